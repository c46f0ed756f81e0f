"""The announce task: one Asset event per cell whose heal run moved rows, all at once.

Cell tasks used to add their own events, seconds apart, so the scheduler
started one downstream run per cell. Here they all come from one task instance
and land in one transaction: one downstream run per run. It runs whatever
happened upstream (trigger rule all_done): a cell that failed or moved
nothing sends no event, the others still do.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import AssetAlias, BaseOperator, Context, TriggerRule

from nova_audit_ops.engine.report import Report
from nova_audit_ops.glue.assets import announce, events
from nova_audit_ops.glue.xcom import REPORT_KEY


class AnnounceOperator(BaseOperator):
    """Add the run's Asset events through `alias` from the reports of `report_task_ids`."""

    ui_color = "#f0eafb"

    def __init__(
        self, *, alias: str, cells_task_id: str, report_task_ids: Sequence[str], **kwargs: Any
    ) -> None:
        kwargs.setdefault("trigger_rule", TriggerRule.ALL_DONE)
        kwargs.setdefault("outlets", [AssetAlias(alias)])
        super().__init__(**kwargs)
        self.alias = alias
        self.cells_task_id = cells_task_id
        self.report_task_ids = list(report_task_ids)

    def execute(self, context: Context) -> list[str]:
        ti = context["ti"]
        cells = ti.xcom_pull(task_ids=self.cells_task_id) or []
        pulled = ti.xcom_pull(task_ids=self.report_task_ids, key=REPORT_KEY) or []
        found = events(cells, [Report.from_dict(data) for data in pulled if data])
        announce(context, self.alias, found)
        labels = [str(extra["cell"]) for _, extra in found]
        self.log.info(
            "Asset events through %s: %s", self.alias, ", ".join(labels) or "none (no rows moved)"
        )
        return labels
