"""# nova_audit_archive_deleted_rows (Airflow DAG)

Moves soft-deleted rows older than `retention_days` (or `before`) of each cell
database into its shadow tables, children with their parents, in bounded
transactions; removes archived instances' API rows. Runs once per maintenance
window (default 01:00-05:00) and stops at its end. After the cells, `announce`
adds one Asset event per cell whose heal run moved rows, which starts one run of
`nova_audit_purge_shadow_tables`.
Use the `nova_audit_archive` pool to bound how many cells run at once.
"""

from nova_audit_ops.glue.dag_factory import build_dag

dag = build_dag("archive_deleted_rows", doc_md=__doc__)
