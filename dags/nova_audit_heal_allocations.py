"""# nova_audit_heal_allocations (Airflow DAG)

Creates the Placement allocations instances lack, from their flavors, against
their compute node's provider (one allocation read per provider, not one per
instance), and fixes allocations held under the wrong project or user (global
step, checked through usage totals). Instances Nova would not heal either
(VGPU, device profiles, port resource requests) are findings with the command
to run. Hourly by default; `mode=audit` only reports.
"""

from nova_audit_ops.glue.dag_factory import build_dag

dag = build_dag("heal_allocations", doc_md=__doc__)
