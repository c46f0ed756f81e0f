"""What a task run takes from its Airflow context: params, reference time, deadline."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from nova_audit_ops import runner
from nova_audit_ops.engine.context import RunContext
from nova_audit_ops.glue.hooks.nova import NovaHook
from nova_audit_ops.glue.variables import VariableStateStore
from nova_audit_ops.registry import spec


def reference_time(context: Mapping[str, Any], task: str | None = None) -> dt.datetime:
    """The end of the run's data interval; a manual run without one uses run_after.

    Tasks that judge live state (is a service up now?) use the wall clock: a
    backfilled or late run must not call a host silent by an old interval's end.
    """
    if task is not None and spec(task).live_state:
        return dt.datetime.now(dt.timezone.utc)
    end = context.get("data_interval_end")
    if end is None:
        dag_run = context.get("dag_run")
        end = getattr(dag_run, "run_after", None)
    if end is None:
        return dt.datetime.now(dt.timezone.utc)
    return dt.datetime.fromtimestamp(end.timestamp(), dt.timezone.utc)


def window_end(context: Mapping[str, Any], options: Mapping[str, Any]) -> dt.datetime | None:
    """A scheduled run in a maintenance window must stop at the window's end.

    The window timetable makes that end the data interval's end. Manual runs and
    backfills of past windows are bounded by the time budget only.
    """
    if not options.get("window"):
        return None
    dag_run = context.get("dag_run")
    if str(getattr(dag_run, "run_type", "")).lower().endswith("manual"):
        return None
    end = context.get("data_interval_end")
    if end is None:
        return None
    end_utc = dt.datetime.fromtimestamp(end.timestamp(), dt.timezone.utc)
    return end_utc if end_utc > dt.datetime.now(dt.timezone.utc) else None


def run_params(task: str, context: Mapping[str, Any]) -> dict[str, Any]:
    """The DAG params that are knobs of this task (Airflow adds none of its own)."""
    names = {k.name for k in spec(task).param_knobs()}
    params = context.get("params") or {}
    return {k: v for k, v in dict(params).items() if k in names}


def open_context(task: str, context: Mapping[str, Any], hook: NovaHook) -> RunContext:
    """A RunContext for this Airflow task run from the operator's hook; connects to nothing yet."""
    cfg = hook.load_config()
    params = run_params(task, context)
    options = runner.options_for(task, cfg, params)
    return runner.open_context(
        task,
        cfg,
        params,
        reference_time=reference_time(context, task),
        window_end=window_end(context, options),
        state=VariableStateStore(),
        api_engine=hook.api_engine(),
    )
