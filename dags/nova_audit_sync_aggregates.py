"""# nova_audit_sync_aggregates (Airflow DAG)

Mirrors Nova host aggregates into Placement: adds each compute node provider to
the aggregates of its host (generation-guarded, retried on conflict), reports
memberships Nova does not know (removal is opt-in: `remove_extra`) and hosts
with no mapping, compute node or provider. Hourly by default; `mode=audit`
only reports.
"""

from nova_audit_ops.glue.dag_factory import build_dag

dag = build_dag("sync_aggregates", doc_md=__doc__)
