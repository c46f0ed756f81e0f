"""A report in one short paragraph: what a run left behind, for a note, an alert or a metric.

Airflow shows a run that found drift and left it in the same green as a clean
run; this text is what the run's note, the notifier and the metrics say
instead. A clean run (nothing left, nothing failed) has no headline.
"""

from __future__ import annotations

from collections import Counter

from nova_audit_ops.engine.report import Code, Report, Status

MARKER = "nova-audit:"  # starts every headline; notes we wrote are told apart from people's
LEFT_STATUSES = (Status.WOULD_FIX, Status.LEFT, Status.MUST_NOT_FIX)
MAX_FIXES = 3


def drift_left(report: Report) -> int:
    """Findings that still need a fix after this run, from the counts (exact when capped).

    Every finding adds one to `drifted`; fixed and failed findings add to
    `fixed` and `failed`; a cell not checked adds to `failed` only.
    """
    failed_findings = report.counts.failed - len(report.cells_failed)
    return max(0, report.counts.drifted - report.counts.fixed - failed_findings)


def left_per_cell(report: Report) -> dict[str, int]:
    """Findings left per cell, as far as the (possibly capped) findings tell."""
    cells = Counter(f.cell or "-" for f in report.findings if f.status in LEFT_STATUSES)
    return dict(sorted(cells.items()))


def headline(report: Report) -> str | None:
    """One paragraph for a run that left drift or failed; None for a clean run."""
    if report.code == Code.OK:
        return None
    left = drift_left(report)
    if report.code >= Code.FAILURE:
        title = f"{MARKER} FAILURE in {report.task}"
    elif left:
        title = f"{MARKER} drift left in {report.task}"
    else:
        title = f"{MARKER} more work left in {report.task}"
    parts = [f"{title} ({report.mode} mode): {left} finding(s) need a fix"]
    per_cell = left_per_cell(report)
    if per_cell:
        parts.append("by cell: " + ", ".join(f"{cell} {n}" for cell, n in per_cell.items()))
    if report.counts.fixed:
        parts.append(f"fixed {report.counts.fixed}")
    if report.cells_failed:
        parts.append("cells NOT checked: " + ", ".join(report.cells_failed))
    if report.more_work:
        parts.append("more work remains (the next run resumes)")
    fixes = list(dict.fromkeys(f.fix for f in report.findings if f.fix))[:MAX_FIXES]
    if fixes:
        parts.append("fix: " + "; ".join(fixes))
    return "; ".join(parts) + "."
