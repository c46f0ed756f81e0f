"""# nova_audit_map_instances (Airflow DAG)

Creates the missing `instance_mappings` of each cell's instances (deleted ones
included) in keyset batches with one multi-row insert per batch, resuming from
a per-cell marker. Daily by default; `mode=audit` only reports.
"""

from nova_audit_ops.glue.dag_factory import build_dag

dag = build_dag("map_instances", doc_md=__doc__)
