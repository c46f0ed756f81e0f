"""# nova_audit_host_fault (Airflow DAG)

Finds nova-compute services that stopped reporting (`down_after` seconds, 300 by
default) and are not forced down yet. Heal mode acts only on the hosts named in
the `hosts` param, which the operator has fenced: it forces each one's service
down and disables it through Nova's API, then resets its running or busy
instances to `error` (`os-resetState`) so they can be evacuated. Every 5 minutes
by default; scheduled runs in audit mode only report.
"""

from nova_audit_ops.glue.dag_factory import build_dag

dag = build_dag("host_fault", doc_md=__doc__)
