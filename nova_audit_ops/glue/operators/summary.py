"""The summary task: merge the per-cell reports, log them as a table, return one report.

It runs whatever happened upstream (trigger rule all_done), so a run whose
cells partly failed still says which cells were checked and which were not.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator, Context, TriggerRule
from airflow.sdk.exceptions import AirflowFailException

from nova_audit_ops.engine import render
from nova_audit_ops.engine.report import Code, Report, merge
from nova_audit_ops.glue.metrics import cell_label, emit_safely
from nova_audit_ops.glue.operators.batch import BATCHES_DETAIL
from nova_audit_ops.glue.runtime import run_params
from nova_audit_ops.glue.xcom import REPORT_KEY, xcom_report
from nova_audit_ops.registry import spec
from nova_audit_ops.runner import skip_reason


class SummaryOperator(BaseOperator):
    """Merge the reports of `report_task_ids`; fail the run when the merged code is 2."""

    ui_color = "#fdf0e6"

    def __init__(
        self,
        *,
        nova_task: str,
        cells_task_id: str,
        report_task_ids: Sequence[str],
        plan_task_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("trigger_rule", TriggerRule.ALL_DONE)
        super().__init__(**kwargs)
        self.nova_task = nova_task
        self.cells_task_id = cells_task_id
        self.report_task_ids = list(report_task_ids)
        self.plan_task_id = plan_task_id

    def execute(self, context: Context) -> dict[str, Any]:
        ti = context["ti"]
        mode = str(run_params(self.nova_task, context).get("mode") or "audit")
        cells = ti.xcom_pull(task_ids=self.cells_task_id)
        if cells is None:  # list_cells failed: bad params, unknown cell, API DB down
            raise AirflowFailException(
                f"{self.nova_task}: {self.cells_task_id} did not finish, nothing was checked "
                "(read its log for the bad param, unknown cell or unreachable API database)"
            )
        pulled = ti.xcom_pull(task_ids=self.report_task_ids, key=REPORT_KEY) or []
        reports = [Report.from_dict(data) for data in pulled if data]
        merged = merge(self.nova_task, reports[0].mode if reports else mode, reports)
        self._mark_missing_cells(merged, cells)
        if self.plan_task_id:
            mark_missing_batches(merged, ti.xcom_pull(task_ids=self.plan_task_id) or [])
        emit_safely(self.nova_task, per_cell(self.nova_task, reports), merged)
        self.log.info("%s", render.table(merged))  # its first line names the task and mode
        data = xcom_report(merged)
        if merged.code >= Code.FAILURE:
            ti.xcom_push(key="return_value", value=data)
            raise AirflowFailException(
                f"{self.nova_task}: code {int(merged.code)}, cells not checked: "
                f"{', '.join(merged.cells_failed) or 'none'} (see the findings above)"
            )
        return data

    def _mark_missing_cells(self, report: Report, cells: list[dict[str, Any]]) -> None:
        """A chosen cell that produced no report (its task crashed or was skipped by hand).

        Cells the task does not work on (cell0 for most) are skipped by design, not missing.
        """
        done = set(report.cells_checked) | set(report.cells_failed)
        task_spec = spec(self.nova_task)
        for cell in cells:
            label = cell.get("name") or cell.get("uuid")
            if label not in done and not skip_reason(task_spec, cell.get("uuid")):
                report.cell_failed(
                    str(label),
                    "no report: the cell's task did not finish",
                    fix=f"read that task's log, then rerun {spec(self.nova_task).name}",
                )


def mark_missing_batches(report: Report, units: list[dict[str, Any]]) -> None:
    """A batch of a split cell that produced no report fails its cell, naming the range.

    (A batch that reported a failure already failed its cell in its own report.)
    """
    done = report.details.get(BATCHES_DETAIL) or {}
    for unit in units:
        if not unit.get("range") or unit["label"] in done:
            continue
        cell = str(unit["cell"].get("name") or unit["cell"].get("uuid"))
        if cell in report.cells_failed:
            continue
        report.cell_failed(
            cell,
            f"{unit['label']}: no report, the batch's task did not finish",
            fix="read that task's log, then rerun the DAG (each batch resumes on its own)",
        )


def per_cell(task: str, reports: list[Report]) -> list[Report]:
    """One report per cell: the batches of a split cell merged, so its gauges are the cell's."""
    groups: dict[str, list[Report]] = {}
    for report in reports:
        groups.setdefault(cell_label(report), []).append(report)
    return [
        group[0] if len(group) == 1 else merge(task, group[0].mode, group)
        for group in groups.values()
    ]
