"""Batch fan-out operators: plan a run's units, run one unit (a cell or an id range of it).

Tasks whose cells can be split (TaskSpec.ranges) get list_cells → plan_batches →
run_cell[unit] → summary. A unit that covers a whole cell runs exactly as the
per-cell operator does (same lock, same marker, task named by the cell); a range
of a split cell is its own task instance, retried alone by Airflow, resuming from
its own marker. The mapped task keeps the id `run_cell`, which the page, notes,
metrics and alerts read.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import Context

from nova_audit_ops import fanout
from nova_audit_ops.engine.context import RunContext
from nova_audit_ops.engine.ranges import IdRange
from nova_audit_ops.engine.report import Report
from nova_audit_ops.glue.operators.base import NovaTaskOperator
from nova_audit_ops.glue.operators.cell import CellTaskOperator
from nova_audit_ops.nova.cells import Cell

BATCHES_DETAIL = "batches"  # report.details: label of each batch that reported -> its cell


class PlanBatchesOperator(NovaTaskOperator):
    """Split the cells list_cells chose into units: ids only, by index steps."""

    ui_color = "#e8f1fb"

    def __init__(self, *, cells_task_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.cells_task_id = cells_task_id

    def execute(self, context: Context) -> list[dict[str, Any]]:
        chosen = context["ti"].xcom_pull(task_ids=self.cells_task_id) or []
        hook = self.get_hook()
        with self.planning_context(context, hook) as ctx:
            wanted = {c["uuid"] for c in chosen}
            cells = [c for c in ctx.all_cells() if c.uuid in wanted]
            for cell in cells:
                override = hook.cell_override(cell.uuid, cell.name)
                if override:
                    ctx.engines.override(cell.uuid, override)
            units = fanout.plan_units(ctx, cells)
        split = sorted({u["cell"]["name"] or u["cell"]["uuid"] for u in units if u["range"]})
        self.log.info(
            "%d units for %d cells (fanout_instances %d); split: %s",
            len(units),
            len(cells),
            fanout.fanout_size(ctx),
            ", ".join(split) or "none",
        )
        return units


class BatchTaskOperator(CellTaskOperator):
    """Run one unit: a whole cell, or one id range of a split cell."""

    def __init__(self, *, unit: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(cell=unit["cell"], **kwargs)
        self.unit = unit

    def prepare(self, ctx: RunContext) -> None:
        if self.unit.get("range"):
            ctx.id_range = IdRange.from_dict(self.unit["range"])
            ctx.batch_slot = int(self.unit.get("slot") or 0)

    def finish(self, report: Report, cell: Cell) -> None:
        if self.unit.get("range"):
            report.details[BATCHES_DETAIL] = {self.unit["label"]: cell.label}

    def where(self, cell: Cell) -> str:
        return str(self.unit.get("label") or cell.label)
