"""# nova_audit_purge_shadow_tables (Airflow DAG)

Deletes shadow-table rows older than its own `retention_days` (default 90) or
`before`, in bounded chunks. Scheduled on the shadow-table Assets that
`nova_audit_archive_deleted_rows` updates, so it runs after archiving. CLI:
`nova-audit run purge`.
"""

from nova_audit_ops.glue.dag_factory import build_dag

dag = build_dag("purge_shadow_tables", doc_md=__doc__)
