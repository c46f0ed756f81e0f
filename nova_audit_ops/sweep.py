"""`nova-audit run all`: every enabled task once, in order, with one combined verdict.

The one-shot "fix stuff" command for cron and for CI jobs. Each task runs
through the runner exactly as `nova-audit run TASK` runs it; a task that fails
or crashes (even before its first cell) becomes a failed entry and the next
task still runs. The sweep's code is the worst task's: 255 > 2 > 1 > 0.
Which tasks run is decided from the config alone, before anything connects.
"""

from __future__ import annotations

import json
import logging
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from nova_audit_ops import registry, runner
from nova_audit_ops.clients import secrets
from nova_audit_ops.engine import render
from nova_audit_ops.engine.report import COUNT_NAMES, CRASH_EXIT_CODE, Code, Report
from nova_audit_ops.engine.state import StateStore
from nova_audit_ops.settings.config import AuditConfig
from nova_audit_ops.settings.errors import NovaAuditError
from nova_audit_ops.settings.spec import TaskSpec

LOG = logging.getLogger("nova_audit")
RAN, SKIPPED, FAILED, CRASHED = "ran", "skipped", "failed", "crashed"


@dataclass
class Outcome:
    """What became of one task in the sweep: its report, or why it has none."""

    task: str
    code: int  # this task's exit code: 0, 1, 2 or 255
    state: str  # ran, skipped, failed (could not start) or crashed (a nova-audit bug)
    report: Report | None = None
    note: str = ""  # why it was skipped, or what stopped it
    seconds: float = 0.0  # wall time of the task

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "state": self.state,
            "code": self.code,
            "note": self.note or None,
            "seconds": round(self.seconds, 3),
            "report": self.report.to_dict() if self.report else None,
        }


@dataclass
class Sweep:
    """Every task's outcome, in the order they ran."""

    mode: str  # audit, heal, or "configured" (each task's own configured mode)
    outcomes: list[Outcome]

    @property
    def code(self) -> int:
        """The worst task's code; 255 (a bug) outranks every verdict."""
        return max((o.code for o in self.outcomes), default=int(Code.OK))

    def to_dict(self) -> dict[str, Any]:
        return {
            "command": "run all",
            "mode": self.mode,
            "code": self.code,
            "tasks": [o.to_dict() for o in self.outcomes],
        }


def skip_reason(spec: TaskSpec, config: AuditConfig) -> str | None:
    """Why `run all` leaves this task out, or None when it runs."""
    settings = config.settings(spec)
    if not settings["enabled"]:
        return f"disabled: [audit.{spec.name}] enabled = false"
    if spec.name == "host_fault" and not settings.get("hosts"):
        return (
            "no [audit.host_fault] hosts (the fenced hosts it may act on); "
            "`nova-audit run host_fault` reports silent hosts"
        )
    cinder = config.cinder
    if spec.family == "cinder" and not (cinder.get("auth_type") or cinder.get("auth_plugin")):
        return "no [cinder] auth_type in the config"
    return None


def run_task(
    spec: TaskSpec,
    config: AuditConfig,
    mode: str | None,
    cells: Sequence[str],
    state: StateStore | None = None,
) -> Outcome:
    """Run one task over its cells; whatever it raises becomes its outcome."""
    params: dict[str, Any] = {"cells": list(cells) or None}
    if not spec.read_only:  # a task that only reports takes no mode (audit is implied)
        params["mode"] = mode
    try:
        ctx = runner.open_context(spec.name, config, params, state=state)
        try:
            report = runner.run_all(ctx)
        finally:
            ctx.engines.dispose()
    except NovaAuditError as exc:  # bad option, unknown cell: nothing was written
        return Outcome(spec.name, int(Code.FAILURE), FAILED, note=secrets.scrub(str(exc)))
    except runner.EXPECTED_FAILURES as exc:  # the API database or a service failed
        return Outcome(spec.name, int(Code.FAILURE), FAILED, note=runner.failure_message(exc))
    except Exception as exc:
        LOG.error("nova-audit bug in %s:\n%s", spec.name, secrets.scrub(traceback.format_exc()))
        note = f"nova-audit bug: {runner.failure_message(exc)} (traceback logged)"
        return Outcome(spec.name, CRASH_EXIT_CODE, CRASHED, note=note)
    if runner.crashes(report):
        note = f"nova-audit bug in {runner.crashes(report)} cell(s) or step(s) (traceback logged)"
        return Outcome(spec.name, CRASH_EXIT_CODE, CRASHED, report, note)
    cells_failed = ", ".join(report.cells_failed)
    note = f"not checked: {cells_failed}" if cells_failed else ""
    return Outcome(spec.name, int(report.code), RAN, report, note)


def run_sweep(
    config: AuditConfig,
    *,
    mode: str | None = None,
    cells: Sequence[str] = (),
    state: StateStore | None = None,
) -> Sweep:
    """Run every enabled task once, in registry.SWEEP_ORDER, each whatever the others did."""
    outcomes = []
    for name in registry.SWEEP_ORDER:
        spec = registry.spec(name)
        reason = skip_reason(spec, config)
        if reason:
            outcomes.append(Outcome(name, int(Code.OK), SKIPPED, note=reason))
            continue
        LOG.info("run all: %s", name)
        started = time.monotonic()
        outcome = run_task(spec, config, mode, cells, state)
        outcome.seconds = time.monotonic() - started
        outcomes.append(outcome)
    return Sweep(mode or "configured", outcomes)


def to_json(sweep: Sweep) -> str:
    return json.dumps(sweep.to_dict(), indent=2)


COUNT_COLUMNS = tuple((name.upper(), 8) for name in COUNT_NAMES)
SUMMARY_COLUMNS = (("TASK", 22), ("RESULT", 12), *COUNT_COLUMNS)


def table(sweep: Sweep, width: int = render.WIDTH) -> str:
    """Every task's own table, then one line per task and the sweep's verdict."""
    sections = []
    for outcome in sweep.outcomes:
        if outcome.report is not None:
            sections.append(render.table(outcome.report, width=width))
        else:
            sections.append("\n".join(render.wrap(f"{outcome.task}: {outcome.note}", width, "  ")))
    fixed = [w for _, w in SUMMARY_COLUMNS]
    widths = [*fixed, render.last_width(fixed, width)]
    headers = [name for name, _ in SUMMARY_COLUMNS] + ["NOTE"]
    rows = [_summary_row(o) for o in sweep.outcomes]
    summary = [f"run all ({sweep.mode} mode)", *render.grid(headers, widths, rows)]
    summary.append(f"result: {_verdict(sweep.code)}")
    return "\n\n".join([*sections, "\n".join(summary)])


def _summary_row(outcome: Outcome) -> list[str | list[str]]:
    counts = outcome.report.counts.to_dict() if outcome.report else {}
    numbers = [str(counts[name]) for name in COUNT_NAMES] if counts else ["-"] * len(COUNT_NAMES)
    result = SKIPPED if outcome.state == SKIPPED else _verdict(outcome.code)
    return [outcome.task, result, *numbers, outcome.note]


def _verdict(code: int) -> str:
    name = "CRASH" if code == CRASH_EXIT_CODE else Code(code).name
    return f"{name} ({code})"
