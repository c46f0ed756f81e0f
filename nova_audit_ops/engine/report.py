"""The result vocabulary every task speaks: codes, findings, counts, reports.

Modelled on oslo.upgradecheck: the numbers are the exit codes, the worst code
of a run wins, and a crash (255) is never mistaken for a verdict.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

CRASH_EXIT_CODE = 255


class Code(enum.IntEnum):
    """A verdict; the value is the CLI's exit code."""

    OK = 0  # nothing wrong, or everything fixed
    WARNING = 1  # drift found and left (audit mode), or more work remains
    FAILURE = 2  # could not finish, or found drift it must not fix


class Status(str, enum.Enum):
    """What happened to one finding; decides the finding's code."""

    FIXED = "fixed"  # heal mode repaired it
    WOULD_FIX = "would_fix"  # audit mode: heal mode would repair it
    LEFT = "left"  # reported only; a knob or an operator decides
    MUST_NOT_FIX = "must_not_fix"  # outside what this task may change
    FAILED = "failed"  # the repair or the check itself failed

    @property
    def code(self) -> Code:
        return _STATUS_CODES[self]


_STATUS_CODES = {
    Status.FIXED: Code.OK,
    Status.WOULD_FIX: Code.WARNING,
    Status.LEFT: Code.WARNING,
    Status.MUST_NOT_FIX: Code.FAILURE,
    Status.FAILED: Code.FAILURE,
}

COUNT_NAMES = ("examined", "drifted", "fixed", "failed", "skipped")


@dataclass(frozen=True)
class Finding:
    """One object that is wrong: what, where, and what was or would be done."""

    kind: str  # "host", "instance", "aggregate", "cell", ...
    object_id: str  # uuid or host name
    problem: str
    action: str  # what was done, or would be done in audit mode
    status: Status
    cell: str | None = None
    fix: str | None = None  # the command an operator should run when nothing was done

    @property
    def code(self) -> Code:
        return self.status.code

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "object_id": self.object_id,
            "cell": self.cell,
            "problem": self.problem,
            "action": self.action,
            "status": self.status.value,
            "code": int(self.code),
            "fix": self.fix,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Finding:
        return cls(
            kind=data["kind"],
            object_id=data["object_id"],
            cell=data.get("cell"),
            problem=data["problem"],
            action=data["action"],
            status=Status(data["status"]),
            fix=data.get("fix"),
        )


@dataclass
class Counts:
    """How many objects a run looked at and what became of them."""

    examined: int = 0
    drifted: int = 0
    fixed: int = 0
    failed: int = 0
    skipped: int = 0

    def add(self, other: Counts) -> None:
        for name in COUNT_NAMES:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def to_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in COUNT_NAMES}


@dataclass
class Report:
    """The outcome of one task run, for one cell or merged over many."""

    task: str
    mode: str
    findings: list[Finding] = field(default_factory=list)
    counts: Counts = field(default_factory=Counts)
    more_work: bool = False
    markers: dict[str, Any] = field(default_factory=dict)  # cell name -> resume marker
    cells_checked: list[str] = field(default_factory=list)
    cells_failed: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    code_floor: Code = Code.OK  # the code of findings dropped when the report was capped

    @property
    def code(self) -> Code:
        worst = max((f.code for f in self.findings), default=self.code_floor)
        worst = max(worst, self.code_floor)
        if self.more_work:
            worst = max(worst, Code.WARNING)
        if self.cells_failed:
            worst = Code.FAILURE
        return Code(worst)

    def add(self, finding: Finding) -> Finding:
        """Record a finding and keep the counts in step with it."""
        self.findings.append(finding)
        self.counts.drifted += 1
        if finding.status is Status.FIXED:
            self.counts.fixed += 1
        elif finding.status is Status.FAILED:
            self.counts.failed += 1
        elif finding.status in (Status.LEFT, Status.MUST_NOT_FIX):
            self.counts.skipped += 1
        return finding

    def cell_failed(self, cell: str, problem: str, fix: str) -> None:
        """Record that a whole cell could not be checked."""
        self.cells_failed.append(cell)
        self.findings.append(
            Finding(
                kind="cell",
                object_id=cell,
                cell=cell,
                problem=problem,
                action="cell not checked",
                status=Status.FAILED,
                fix=fix,
            )
        )
        self.counts.failed += 1

    def to_dict(self, max_findings: int | None = None) -> dict[str, Any]:
        """A JSON-ready dict; max_findings caps the list for XCom-sized payloads."""
        kept = self.findings
        if max_findings is not None and len(kept) > max_findings:
            kept = sorted(kept, key=lambda f: f.code, reverse=True)[:max_findings]
        details = dict(self.details)
        if len(kept) < len(self.findings):
            details["findings_truncated"] = len(self.findings) - len(kept)
        return {
            "task": self.task,
            "mode": self.mode,
            "code": int(self.code),
            "counts": self.counts.to_dict(),
            "findings": [f.to_dict() for f in kept],
            "more_work": self.more_work,
            "markers": dict(self.markers),
            "cells_checked": list(self.cells_checked),
            "cells_failed": list(self.cells_failed),
            "details": details,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Report:
        return cls(
            task=data["task"],
            mode=data["mode"],
            findings=[Finding.from_dict(f) for f in data.get("findings", [])],
            counts=Counts(**{k: int(v) for k, v in data.get("counts", {}).items()}),
            more_work=bool(data.get("more_work", False)),
            markers=dict(data.get("markers", {})),
            cells_checked=list(data.get("cells_checked", [])),
            cells_failed=list(data.get("cells_failed", [])),
            details=dict(data.get("details", {})),
            code_floor=Code(int(data.get("code", 0))),
        )


def merge(task: str, mode: str, reports: Iterable[Report]) -> Report:
    """Combine per-cell (or per-batch) reports into one; the worst code wins by construction."""
    merged = Report(task=task, mode=mode)
    for report in reports:
        merged.findings.extend(report.findings)
        merged.counts.add(report.counts)
        merged.more_work = merged.more_work or report.more_work
        merged.code_floor = max(merged.code_floor, report.code_floor)
        merged.markers.update(report.markers)
        # the batches of a split cell each name it: once in the merged report
        merged.cells_checked.extend(
            c for c in report.cells_checked if c not in merged.cells_checked
        )
        merged.cells_failed.extend(c for c in report.cells_failed if c not in merged.cells_failed)
        for key, value in report.details.items():
            _merge_detail(merged.details, key, value)
    return merged


def _merge_detail(details: dict[str, Any], key: str, value: Any) -> None:
    """Counts add up, per-cell mappings are combined, anything else: the first wins."""
    current = details.get(key)
    if key not in details:
        details[key] = dict(value) if isinstance(value, dict) else value
    elif isinstance(current, int) and isinstance(value, int) and not isinstance(value, bool):
        details[key] = current + value
    elif isinstance(current, dict) and isinstance(value, dict):
        current.update(value)
