"""Airflow operators that run nova-audit tasks per cell and summarise them."""

from nova_audit_ops.operators.cells import CellTaskOperator, GlobalStepOperator, ListCellsOperator
from nova_audit_ops.operators.summary import SummaryOperator

__all__ = ["CellTaskOperator", "GlobalStepOperator", "ListCellsOperator", "SummaryOperator"]
