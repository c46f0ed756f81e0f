"""Reports for people (a table that fits 120 columns) and for machines (one JSON object).

The table is read in Airflow's log view and in terminals: it fits `width`
columns (120 by default) by wrapping long cells onto further lines, never by
cutting them, so every word of a problem or a fix command is still there.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Sequence

from nova_audit_ops.engine.report import Code, Finding, Report

WIDTH = 120  # Airflow's log view at 1600 px, and most terminals
GAP = "  "
# Fixed columns of the findings table; the last column takes the rest of the width.
FINDING_COLUMNS = (("CELL", 10), ("STATUS", 12), ("OBJECT", 36))
TEXT_COLUMN = "PROBLEM / ACTION / FIX"
MIN_TEXT = 24  # narrowest the last column gets, however small `width` is


def to_json(report: Report) -> str:
    return json.dumps(report.to_dict(), indent=2, sort_keys=False)


def wrap(text: str, width: int, indent: str = "") -> list[str]:
    """`text` on lines of at most `width`; hyphenated commands stay whole."""
    return textwrap.wrap(
        str(text),
        width,
        subsequent_indent=indent,
        break_on_hyphens=False,
        replace_whitespace=True,
    ) or [""]


def grid(
    headers: Sequence[str],
    widths: Sequence[int],
    rows: Sequence[Sequence[str | list[str]]],
) -> list[str]:
    """A table whose cells wrap within their column; a list cell is separate paragraphs."""
    lines = _lines([[h] for h in headers], widths) + _lines([["-" * w] for w in widths], widths)
    for row in rows:
        cells = []
        for value, width in zip(row, widths, strict=True):
            paragraphs = value if isinstance(value, list) else [value]
            cells.append([line for text in paragraphs for line in wrap(text, width, "  ")])
        lines.extend(_lines(cells, widths))
    return lines


def last_width(fixed: Sequence[int], width: int) -> int:
    """What is left of `width` for the last column after the fixed ones and the gaps."""
    return max(MIN_TEXT, width - sum(fixed) - len(GAP) * len(fixed))


def table(report: Report, *, width: int = WIDTH, title: str | None = None) -> str:
    """The findings as a table, then the counts, the cells, the details and the verdict."""
    lines = [title or f"{report.task} ({report.mode} mode)"]
    if report.findings:
        fixed = [w for _, w in FINDING_COLUMNS]
        widths = [*fixed, last_width(fixed, width)]
        headers = [name for name, _ in FINDING_COLUMNS] + [TEXT_COLUMN]
        lines.extend(grid(headers, widths, [_finding_row(f) for f in report.findings]))
    else:
        lines.append("no drift found")
    counts = ", ".join(f"{k} {v}" for k, v in report.counts.to_dict().items())
    lines.append(f"counts: {counts}")
    if report.cells_checked:
        lines.extend(wrap(f"cells checked: {', '.join(report.cells_checked)}", width, "  "))
    if report.cells_failed:
        lines.extend(wrap(f"cells NOT checked: {', '.join(report.cells_failed)}", width, "  "))
    lines.extend(_details(report, width))
    if report.more_work:
        markers = f"more work remains; resume markers: {json.dumps(report.markers)}"
        lines.extend(wrap(markers, width, "  "))
    lines.append(f"result: {Code(report.code).name} ({int(report.code)})")
    return "\n".join(lines)


def _finding_row(f: Finding) -> list[str | list[str]]:
    text = [f.problem, f"action: {f.action}"] + ([f"fix: {f.fix}"] if f.fix else [])
    return [f.cell or "-", f.status.value, f.object_id, text]


def _details(report: Report, width: int) -> list[str]:
    lines: list[str] = []
    for key, value in report.details.items():
        label = key.replace("_", " ")
        if key == "checks" and isinstance(value, dict):  # preflight: one verdict per line
            lines.append(f"{label}:")
            for name, verdict in sorted(value.items()):
                lines.extend(wrap(f"  {name:<45} {verdict}", width, " " * 48))
            continue
        text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
        lines.extend(wrap(f"{label}: {text}", width, "  "))
    return lines


def _lines(cells: Sequence[list[str]], widths: Sequence[int]) -> list[str]:
    """One table row: cell i's k-th line in column i of the row's k-th line."""
    height = max(len(c) for c in cells)
    return [
        GAP.join(
            (c[i] if i < len(c) else "").ljust(w) for c, w in zip(cells, widths, strict=True)
        ).rstrip()
        for i in range(height)
    ]
