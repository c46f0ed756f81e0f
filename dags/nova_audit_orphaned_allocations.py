"""# nova_audit_orphaned_allocations (Airflow DAG)

Finds Placement consumers on compute node providers that are neither an
instance on that node, an in-progress migration nor a build in flight, like
`nova-manage placement audit`. Deleting them is opt-in (`delete`) and only for
consumers seen orphaned in two runs at least `grace_period` apart. Hourly by
default; `mode=audit` only reports.
"""

from nova_audit_ops.glue.dag_factory import build_dag

dag = build_dag("orphaned_allocations", doc_md=__doc__)
