"""# nova_audit_volume_attachments (Airflow DAG)

Compares Cinder's volume attachments with Nova's volume block device mappings,
per cell. Attachments of deleted (or archived) servers are dangling: heal mode
deletes them through Cinder once two runs `grace_period` apart saw them.
Attachments of live servers that Nova does not use, and BDMs whose attachment
Cinder lost, are reported with Nova's fix (a reboot of the server). A global
step judges attachments whose server is in no cell. Hourly by default.
"""

from nova_audit_ops.glue.dag_factory import build_dag

dag = build_dag("volume_attachments", doc_md=__doc__)
