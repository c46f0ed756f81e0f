"""# nova_audit_preflight (Airflow DAG)

nova-status-style checks of the deployment, read-only (audit is the only mode):
cells v2 set-up, cell schema revisions, the Placement and Cinder API versions
Nova needs, and per cell the compute services (too old, or silent longer than
`service_down_time`), unmapped compute nodes, compute nodes without a resource
provider and instance/mapping count mismatches. Each problem names the command
that fixes it. Hourly by default; code 1 is a warning, code 2 a failure.
"""

from nova_audit_ops.glue.dag_factory import build_dag

dag = build_dag("preflight", doc_md=__doc__)
