"""# nova_audit_heal_instance_mappings (Airflow DAG)

Fixes instance mappings whose cell is missing or wrong and deletes orphans
(with their request specs and group memberships) after a grace period. Never
touches Nova's INSTANCE_MIGRATION_MARKER row or instances being built.
Every 10 minutes by default; `mode=audit` only reports.
"""

from nova_audit_ops.glue.dag_factory import build_dag

dag = build_dag("heal_instance_mappings", doc_md=__doc__)
