"""Build the DAG of one nova-audit task: list_cells → run_cell[cell] (→ global) → summary.

Tasks whose cells can be split: list_cells → plan_batches → run_cell[unit] (→ global)
→ summary, a unit being a whole cell or one id range of a big one.

DAG files call build_dag() and nothing else. The schedule and the params'
defaults come from the config file named by $NOVA_AUDIT_CONFIG, read once at
parse time (a small local file; no database or network I/O). A missing file
means the shipped defaults; an invalid one is an import error naming the key.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from airflow.sdk import DAG, AssetAlias, CronDataIntervalTimetable, Param

from nova_audit_ops import registry
from nova_audit_ops.glue.alerts import DriftAlert, bind, load_notifier
from nova_audit_ops.glue.operators import (
    AnnounceOperator,
    BatchTaskOperator,
    CellTaskOperator,
    GlobalStepOperator,
    ListCellsOperator,
    PlanBatchesOperator,
    SummaryOperator,
)
from nova_audit_ops.glue.timetables import MaintenanceWindowTimetable
from nova_audit_ops.registry import spec
from nova_audit_ops.settings.spec import TaskSpec

DAG_PREFIX = "nova_audit_"
PLAN_TASK = "plan_batches"
START_DATE = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
PRESETS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
}


def dag_params(task_spec: TaskSpec, settings: dict[str, Any]) -> dict[str, Param]:
    """One JSON-schema-validated Param per knob, defaulting to the configured value."""
    return {
        knob.name: Param(settings[knob.name], **knob.json_schema())
        for knob in task_spec.param_knobs()
    }


def timetable(task_spec: TaskSpec, settings: dict[str, Any]) -> Any:
    """Asset-triggered, a maintenance window, or a cron schedule with a real data interval."""
    if task_spec.triggered_by:
        return [AssetAlias(task_spec.triggered_by)]
    if settings.get("window"):
        return MaintenanceWindowTimetable(
            settings["window"], settings.get("window_days"), settings.get("timezone") or "UTC"
        )
    schedule = settings.get("schedule")
    if not schedule or schedule.lower() == "none":
        return None
    cron = PRESETS.get(schedule.lower(), schedule)
    return CronDataIntervalTimetable(cron, timezone=settings.get("timezone") or "UTC")


def default_args(settings: dict[str, Any]) -> dict[str, Any]:
    return {
        "owner": "nova-audit",
        "retries": int(settings["retries"]),
        "retry_delay": dt.timedelta(seconds=int(settings["retry_delay"])),
        "retry_exponential_backoff": 2.0,
        "pool": settings.get("pool") or "default_pool",
    }


def callbacks(task: str, settings: dict[str, Any]) -> dict[str, Any]:
    """The DAG's on_success/on_failure callbacks: the configured notifier, if any."""
    notifier = load_notifier(settings.get("notifier"), settings.get("notifier_args"))
    if notifier is None:
        return {}
    return {
        "on_success_callback": DriftAlert(notifier, task=task, failure=False),
        "on_failure_callback": DriftAlert(notifier, task=task, failure=True),
    }


def cell_tasks(task: str, task_spec: TaskSpec, cells: ListCellsOperator) -> Any:
    """run_cell mapped over the cells, or (tasks whose cells can be split) over the units
    plan_batches makes of them: a whole cell keeps its name, a batch reads "cell1 ids 1-500"."""
    if task_spec.ranges is None:
        return CellTaskOperator.partial(
            task_id="run_cell",
            nova_task=task,
            map_index_template="{{ task.cell['name'] or task.cell['uuid'] }}",
        ).expand(cell=cells.output)
    plan = PlanBatchesOperator(task_id=PLAN_TASK, nova_task=task, cells_task_id="list_cells")
    cells >> plan
    return BatchTaskOperator.partial(
        task_id="run_cell",
        nova_task=task,
        map_index_template="{{ task.unit['label'] }}",
    ).expand(unit=plan.output)


def build_dag(task: str, doc_md: str | None = None) -> DAG | None:
    """The DAG `nova_audit_<task>`, wired from the task's spec and the config file.

    None when the task is disabled in the config (`enabled = false`).
    """
    task_spec = spec(task)
    settings = registry.load_config(must_exist=False).settings(task_spec)
    if not settings["enabled"]:
        return None
    with DAG(
        dag_id=DAG_PREFIX + task,
        description=task_spec.summary,
        doc_md=doc_md,
        schedule=timetable(task_spec, settings),
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,
        max_active_tasks=8,
        default_args=default_args(settings),
        params=dag_params(task_spec, settings),
        tags=["nova-audit", task_spec.family],
        # Only its upstream DAG's Asset events start an Asset-triggered DAG: paused, it
        # would never run. Clock-scheduled DAGs start paused until an operator unpauses them.
        is_paused_upon_creation=not task_spec.triggered_by,
        **callbacks(task, settings),
    ) as dag:
        cells = ListCellsOperator(task_id="list_cells", nova_task=task)
        per_cell = cell_tasks(task, task_spec, cells)
        report_tasks = ["run_cell"]
        upstream: list[Any] = [per_cell]
        if task_spec.global_step:
            global_step = GlobalStepOperator(task_id="run_global", nova_task=task)
            cells >> global_step
            report_tasks.append("run_global")
            upstream.append(global_step)
        summary = SummaryOperator(
            task_id="summary",
            nova_task=task,
            cells_task_id="list_cells",
            report_task_ids=report_tasks,
            plan_task_id=PLAN_TASK if task_spec.ranges else None,
        )
        upstream >> summary
        if task_spec.asset_alias:
            announce = AnnounceOperator(
                task_id="announce",
                alias=task_spec.asset_alias,
                cells_task_id="list_cells",
                report_task_ids=report_tasks,
            )
            upstream >> announce
    bind(dag)
    return dag
