"""Airflow operators that run nova-audit tasks per cell and summarise them."""

from nova_audit_ops.glue.operators.announce import AnnounceOperator
from nova_audit_ops.glue.operators.batch import BatchTaskOperator, PlanBatchesOperator
from nova_audit_ops.glue.operators.cell import CellTaskOperator, ListCellsOperator
from nova_audit_ops.glue.operators.global_step import GlobalStepOperator
from nova_audit_ops.glue.operators.summary import SummaryOperator

__all__ = [
    "AnnounceOperator",
    "BatchTaskOperator",
    "CellTaskOperator",
    "GlobalStepOperator",
    "ListCellsOperator",
    "PlanBatchesOperator",
    "SummaryOperator",
]
