"""Drift, fixed and failed counts per task and cell, through Airflow's metrics.

The summary task emits them once per run through the Task SDK's stats module,
so they go wherever the deployment sends Airflow's own metrics ([metrics]
statsd_on, statsd_influxdb_enabled, statsd_datadog_enabled or otel_on) under
its prefix. As Airflow 3.2+ does for its own metrics, each has a name whose
variables are tags (task, cell) and, while `[metrics] legacy_names_on` is true
(the default), a dotted name with the task and cell in it for plain StatsD.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from airflow.sdk.configuration import conf
from airflow.sdk.observability import stats

from nova_audit_ops.engine.headline import drift_left
from nova_audit_ops.engine.report import Report

log = logging.getLogger(__name__)

PREFIX = "nova_audit"
GLOBAL_LABEL = "global"  # the global step's report belongs to no cell


def cell_label(report: Report) -> str:
    """The cell one task instance's report is about (the global step's has none)."""
    cells = list(dict.fromkeys(report.cells_checked + report.cells_failed))
    return cells[0] if len(cells) == 1 else GLOBAL_LABEL


def emit_safely(task: str, reports: Iterable[Report], merged: Report) -> None:
    """emit(), but a metrics backend that fails never fails the run."""
    try:
        emit(task, reports, merged)
    except Exception:
        log.exception("nova-audit: metrics of %s not sent", task)


def emit(task: str, reports: Iterable[Report], merged: Report) -> None:
    """One gauge of drift left and counters of fixed and failed per cell, and the task's code.

    Cells that sent no report (their task crashed) count one failure each.
    """
    seen: set[str] = set()
    for report in reports:
        cell = cell_label(report)
        seen.add(cell)
        _gauge("drift", drift_left(report), task, cell)
        _count("fixed", report.counts.fixed, task, cell)
        _count("failed", report.counts.failed, task, cell)
    for cell in merged.cells_failed:
        if cell not in seen:
            _count("failed", 1, task, cell)
    _gauge("result", int(merged.code), task, None)


def metric_names(metric: str, task: str, cell: str | None) -> tuple[str, str | None]:
    """The tagged name and, when legacy names are on, the dotted one."""
    legacy = None
    if conf.getboolean("metrics", "legacy_names_on", fallback=True):
        parts = [PREFIX, task, *([cell] if cell is not None else []), metric]
        legacy = ".".join(
            stats.normalize_name_for_stats(p.replace(".", "__"), False) for p in parts
        )
    return f"{PREFIX}.{metric}", legacy


def _safe(part: str) -> str:
    """A name part that keeps StatsD's hierarchy: no dots, only the characters it allows."""
    return stats.normalize_name_for_stats(part.replace(".", "__"), False)


def _tags(task: str, cell: str | None) -> dict[str, str]:
    return {"task": task, **({"cell": cell} if cell is not None else {})}


def _gauge(metric: str, value: int, task: str, cell: str | None) -> None:
    name, legacy = metric_names(metric, task, cell)
    stats.gauge(name, value, tags=_tags(task, cell))
    if legacy:
        stats.gauge(legacy, value)


def _count(metric: str, value: int, task: str, cell: str | None) -> None:
    name, legacy = metric_names(metric, task, cell)
    stats.incr(name, value, tags=_tags(task, cell))
    if legacy:
        stats.incr(legacy, value)
