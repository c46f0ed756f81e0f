"""What the nova-audit page shows, from the summary reports the runs already pushed.

Each finished run of a `nova_audit_*` DAG leaves one summary XCom (the merged
report of its cells), so the last 30 days are one indexed query returning one
row per run: no history store of our own is needed. The result of a task in a
cell is taken from the newest run that checked that cell, so a run limited to
one cell (the `cells` param) does not hide the others.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from nova_audit_ops.engine.headline import drift_left
from nova_audit_ops.engine.report import Code, Finding, Report, Status

log = logging.getLogger(__name__)

DAG_PREFIX = "nova_audit_"
SUMMARY_TASK = "summary"
DAYS = 30
GLOBAL_CELL = "global"  # findings that belong to no cell (the global step's)
OK, DRIFT_LEFT, HEALED, FAILED = "OK", "drift left", "healed", "failed"
OPEN_STATUSES = (Status.WOULD_FIX, Status.LEFT, Status.MUST_NOT_FIX, Status.FAILED)
FAILED_STATUSES = (Status.MUST_NOT_FIX, Status.FAILED)
FINISHED_STATES = ("success", "failed")


@dataclass(frozen=True)
class RunRecord:
    """One finished run of a nova-audit DAG and its summary report (None if it pushed none)."""

    dag_id: str
    run_id: str
    state: str
    when: dt.datetime
    report: Report | None

    @property
    def task(self) -> str:
        return self.dag_id.removeprefix(DAG_PREFIX)

    @property
    def result(self) -> str:
        """The run's verdict: failed, drift left, healed or OK."""
        if self.report is None or self.state == "failed":
            return FAILED
        if self.report.code >= Code.FAILURE:
            return FAILED
        if self.report.code == Code.WARNING:
            return DRIFT_LEFT
        return HEALED if self.report.counts.fixed else OK


@dataclass(frozen=True)
class CellResult:
    """The last result of one task in one cell, and the findings it left open."""

    task: str
    cell: str
    result: str
    run: RunRecord
    open_findings: list[Finding]
    fixed: int
    capped: bool = False  # the run's report dropped findings (XCom cap): counts are a floor


@dataclass
class PageData:
    """Everything the page and its JSON endpoint show."""

    since: dt.datetime
    now: dt.datetime
    last_runs: dict[str, RunRecord] = field(default_factory=dict)  # task -> newest run
    cells: list[CellResult] = field(default_factory=list)
    history: dict[str, list[RunRecord]] = field(default_factory=dict)  # task -> runs, oldest first


def cell_of(finding: Finding) -> str:
    return finding.cell or GLOBAL_CELL


def cell_results(run: RunRecord) -> dict[str, CellResult]:
    """Per cell the run checked (or could not check): its result and open findings."""
    report = run.report
    if report is None:
        return {}
    cells = list(dict.fromkeys([*report.cells_checked, *report.cells_failed]))
    cells += [c for c in dict.fromkeys(cell_of(f) for f in report.findings) if c not in cells]
    capped = bool(report.details.get("findings_truncated"))
    results = {}
    for cell in cells:
        findings = [f for f in report.findings if cell_of(f) == cell]
        open_findings = [f for f in findings if f.status in OPEN_STATUSES]
        fixed = sum(f.status is Status.FIXED for f in findings)
        if cell in report.cells_failed or any(f.status in FAILED_STATUSES for f in findings):
            result = FAILED
        elif open_findings:
            result = DRIFT_LEFT
        else:
            result = HEALED if fixed else OK
        results[cell] = CellResult(run.task, cell, result, run, open_findings, fixed, capped)
    return results


def build(runs: Iterable[RunRecord], since: dt.datetime, now: dt.datetime) -> PageData:
    """The page's data from finished runs in any order."""
    page = PageData(since=since, now=now)
    ordered = sorted(runs, key=lambda r: (r.when, r.run_id))
    latest: dict[tuple[str, str], CellResult] = {}
    run_wide: dict[str, set[str]] = {}  # task -> labels of findings outside any checked cell
    for run in ordered:
        page.history.setdefault(run.task, []).append(run)
        page.last_runs[run.task] = run
        results = cell_results(run)
        _clear_run_wide(run, results, run_wide.setdefault(run.task, set()))
        latest.update({(run.task, cell): res for cell, res in results.items()})
    page.cells = [latest[key] for key in sorted(latest)]
    page.history = dict(sorted(page.history.items()))
    page.last_runs = dict(sorted(page.last_runs.items()))
    return page


def _clear_run_wide(run: RunRecord, results: dict[str, CellResult], seen: set[str]) -> None:
    """Labels that are no cell (`global`, the global step's scopes) belong to every run.

    Such a label appears only where a run has findings for it, so a later run
    without any means it is clean now: without this, drift an earlier run found
    there would show as left forever. A capped report may have dropped them.
    """
    report = run.report
    if report is None or report.details.get("findings_truncated"):
        return
    for label in seen - set(results):
        results[label] = CellResult(run.task, label, OK, run, [], 0)
    seen.update(set(results) - set(report.cells_checked) - set(report.cells_failed))


def parse_report(value: Any) -> Report | None:
    """A summary XCom value (JSON text, possibly encoded twice) as a Report, or None."""
    try:
        while isinstance(value, str | bytes):
            value = json.loads(value)
        return Report.from_dict(value) if isinstance(value, dict) else None
    except (ValueError, KeyError, TypeError):
        log.warning("nova-audit page: a summary XCom is not a report; its run shows as failed")
        return None


def load_runs(session: Any, dag_ids: Sequence[str], since: dt.datetime) -> list[RunRecord]:
    """Finished runs of these DAGs since `since`, each with its summary report: one query."""
    from airflow.models.dagrun import DagRun
    from airflow.models.xcom import XComModel
    from sqlalchemy import and_, select

    summary = and_(
        XComModel.dag_run_id == DagRun.id,
        XComModel.task_id == SUMMARY_TASK,
        XComModel.map_index == -1,
        XComModel.key == "return_value",
    )
    query = (
        select(DagRun.dag_id, DagRun.run_id, DagRun.state, DagRun.run_after, XComModel.value)
        .outerjoin(XComModel, summary)
        .where(
            DagRun.dag_id.in_(list(dag_ids)),
            DagRun.run_after >= since,
            DagRun.state.in_(FINISHED_STATES),
        )
    )
    return [
        RunRecord(dag_id, run_id, str(state), when, parse_report(value))
        for dag_id, run_id, state, when, value in session.execute(query)
    ]


def to_json(page: PageData, run_url: Callable[[RunRecord], str]) -> dict[str, Any]:
    """The page's data for the JSON endpoint; run_url(run) gives a run's page in Airflow."""
    return {
        "since": page.since.isoformat(),
        "generated_at": page.now.isoformat(),
        "tasks": {
            task: {"result": run.result, "run": _run_json(run, run_url)}
            for task, run in page.last_runs.items()
        },
        "cells": [
            {
                "task": c.task,
                "cell": c.cell,
                "result": c.result,
                "fixed": c.fixed,
                "capped": c.capped,
                "run": _run_json(c.run, run_url),
                "open_findings": [f.to_dict() for f in c.open_findings],
            }
            for c in page.cells
        ],
        "history": {
            task: [_run_json(run, run_url) for run in runs] for task, runs in page.history.items()
        },
    }


def _run_json(run: RunRecord, run_url: Callable[[RunRecord], str]) -> dict[str, Any]:
    report = run.report
    return {
        "dag_id": run.dag_id,
        "run_id": run.run_id,
        "state": run.state,
        "when": run.when.isoformat(),
        "url": run_url(run),
        "result": run.result,
        "mode": report.mode if report else None,
        "findings": report.counts.drifted if report else None,
        "fixed": report.counts.fixed if report else None,
        "left": drift_left(report) if report else None,
    }
