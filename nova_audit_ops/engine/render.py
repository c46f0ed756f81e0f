"""Reports for people (a table) and for machines (one JSON object)."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Sequence

from nova_audit_ops.engine.report import Code, Report

COLUMNS = (("CELL", 10), ("STATUS", 12), ("OBJECT", 38), ("PROBLEM", 44), ("ACTION / FIX", 44))


def to_json(report: Report) -> str:
    return json.dumps(report.to_dict(), indent=2, sort_keys=False)


def table(report: Report) -> str:
    """A fixed-width table of findings followed by the counts and the verdict."""
    lines = [f"{report.task} ({report.mode} mode)"]
    if report.findings:
        lines.append(_row([name for name, _ in COLUMNS]))
        lines.append(_row(["-" * width for _, width in COLUMNS]))
        for f in report.findings:
            action = f.action if not f.fix else f"{f.action}; fix: {f.fix}"
            lines.append(_row([f.cell or "-", f.status.value, f.object_id, f.problem, action]))
    else:
        lines.append("no drift found")
    counts = ", ".join(f"{k} {v}" for k, v in report.counts.to_dict().items())
    lines.append(f"counts: {counts}")
    if report.cells_checked:
        lines.append(f"cells checked: {', '.join(report.cells_checked)}")
    if report.cells_failed:
        lines.append(f"cells NOT checked: {', '.join(report.cells_failed)}")
    for key, value in report.details.items():
        label = key.replace("_", " ")
        if key == "checks" and isinstance(value, dict):  # preflight: one verdict per line
            lines.append(f"{label}:")
            lines.extend(f"  {name:<45} {verdict}" for name, verdict in sorted(value.items()))
            continue
        text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
        lines.append(f"{label}: {textwrap.shorten(text, 160, placeholder=' ...')}")
    if report.more_work:
        lines.append(f"more work remains; resume markers: {json.dumps(report.markers)}")
    lines.append(f"result: {Code(report.code).name} ({int(report.code)})")
    return "\n".join(lines)


def _row(cells: Sequence[str]) -> str:
    wrapped = [
        textwrap.wrap(str(text), width) or [""]
        for text, (_, width) in zip(cells, COLUMNS, strict=True)
    ]
    height = max(len(w) for w in wrapped)
    out = []
    for i in range(height):
        parts = [
            (w[i] if i < len(w) else "").ljust(width)
            for w, (_, width) in zip(wrapped, COLUMNS, strict=True)
        ]
        out.append("  ".join(parts).rstrip())
    return "\n".join(out)
