"""What every preflight check shares: its verdict in the report, its findings."""

from __future__ import annotations

from collections.abc import Sequence

from nova_audit_ops.clients import secrets
from nova_audit_ops.engine.report import Finding, Report, Status


def record(report: Report, name: str, problems: Sequence[Finding], skipped: str = "") -> None:
    """Record one check's verdict in details and its problems as findings."""
    report.counts.examined += 1
    if skipped:
        verdict = f"skipped: {skipped}"
    elif any(f.status is Status.FAILED for f in problems):
        verdict = "failure"
    elif problems:
        verdict = "warning"
    else:
        verdict = "success"
    report.details.setdefault("checks", {})[name] = verdict
    for finding in problems:
        report.add(finding)


def version_tuple(text: str) -> tuple[int, int]:
    """'1.36' → (1, 36); a malformed version sorts lowest."""
    try:
        major, minor = text.split(".", 1)
        return int(major), int(minor)
    except ValueError:
        return (0, 0)


def check_problem(
    name: str, problem: str, fix: str, *, failure: bool = False, cell: str | None = None
) -> Finding:
    """A preflight finding: the check's name, what is wrong, and the command that fixes it."""
    return Finding(
        kind="check",
        object_id=name,
        cell=cell,
        problem=secrets.scrub(problem),
        action="nothing: preflight only reports",
        status=Status.FAILED if failure else Status.LEFT,
        fix=fix,
    )
