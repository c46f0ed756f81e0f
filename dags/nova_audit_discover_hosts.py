"""# nova_audit_discover_hosts (Airflow DAG)

Maps compute hosts that have no `host_mappings` row to their cell, like
`nova-manage cell_v2 discover_hosts`, one query per cell. Runs every 10 minutes
by default; `mode=audit` (the default) only reports. Params: `mode`, `cells`,
`batch_size`, `by_service`, `lock_timeout`; see docs/configuration.md.
"""

from nova_audit_ops.glue.dag_factory import build_dag

dag = build_dag("discover_hosts", doc_md=__doc__)
