"""The per-cell operators: list the cells, run one task for one cell.

A bad param or an unknown cell fails the run at `list_cells` without retries
(retrying cannot fix it) and before anything is written. An unreachable cell
fails that cell's task only, after its report has been pushed for the summary.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import Context
from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSkipException

from nova_audit_ops import runner
from nova_audit_ops.clients import secrets
from nova_audit_ops.engine import render
from nova_audit_ops.engine.context import RunContext
from nova_audit_ops.engine.report import Report
from nova_audit_ops.glue import runtime
from nova_audit_ops.glue.operators.base import NovaTaskOperator
from nova_audit_ops.glue.xcom import push_report
from nova_audit_ops.nova.cells import Cell
from nova_audit_ops.registry import spec


class ListCellsOperator(NovaTaskOperator):
    """Validate the run's params and return the cells to work on (no secrets)."""

    ui_color = "#e8f1fb"

    def execute(self, context: Context) -> list[dict[str, Any]]:
        with self.planning_context(context) as ctx:
            cells = runner.chosen_cells(ctx, with_skipped=True)
        skipped = [c.label for c in cells if runner.skip_reason(spec(self.nova_task), c.uuid)]
        checked = [c.label for c in cells if c.label not in skipped]
        self.log.info("cells to check: %s", ", ".join(checked) or "none")
        if skipped:
            self.log.info("cells this task skips: %s", ", ".join(skipped))
        return [cell.public() for cell in cells]


class CellTaskOperator(NovaTaskOperator):
    """Run one nova-audit task for one cell; expanded over list_cells' output."""

    ui_color = "#eaf7ea"

    def __init__(self, *, cell: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.cell = cell

    def execute(self, context: Context) -> None:
        why = runner.skip_reason(spec(self.nova_task), self.cell.get("uuid"))
        if why:  # shown as skipped in the grid, not as a green task that did nothing
            raise AirflowSkipException(why)
        hook = self.get_hook()
        ctx = runtime.open_context(self.nova_task, context, hook)
        try:
            cell = self._find_cell(ctx.all_cells())
            override = hook.cell_override(cell.uuid, cell.name)
            if override:
                ctx.engines.override(cell.uuid, override)
            self.prepare(ctx)
            report = runner.run_cell(ctx, cell)
        finally:
            ctx.engines.dispose()
        self.finish(report, cell)
        push_report(context, report)
        title = f"{ctx.spec.name} ({ctx.mode} mode), cell {self.where(cell)}"
        self.log.info("%s", render.table(report, title=title))
        if report.cells_failed:
            problems = "; ".join(f.problem for f in report.findings if f.kind == "cell")
            raise AirflowException(
                f"cell {self.where(cell)} not checked: {secrets.scrub(problems)}"
            )

    def prepare(self, ctx: RunContext) -> None:
        """Narrow the run before it starts (a batch: its id range); a cell runs whole."""

    def finish(self, report: Report, cell: Cell) -> None:
        """Mark the report before it is pushed (a batch: which one reported)."""

    def where(self, cell: Cell) -> str:
        """What this task instance covers, as its log and its failure name it."""
        return cell.label

    def _find_cell(self, cells: Sequence[Cell]) -> Cell:
        for cell in cells:
            if cell.uuid == self.cell.get("uuid"):
                return cell
        raise AirflowFailException(
            f"cell {self.cell.get('name') or self.cell.get('uuid')} is no longer in "
            "cell_mappings: rerun the DAG to pick up the current cells"
        )
