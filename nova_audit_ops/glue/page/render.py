"""The nova-audit page as one self-contained HTML document (inline CSS and SVG, no script).

Every text that comes from a report is escaped and passed through safe.text.
"""

from __future__ import annotations

from collections.abc import Callable
from html import escape

from nova_audit_ops.glue.page import chart, safe
from nova_audit_ops.glue.page.data import (
    DRIFT_LEFT,
    FAILED,
    HEALED,
    OK,
    CellResult,
    PageData,
    RunRecord,
)

RunUrl = Callable[[RunRecord], str]
BADGE_COLOURS = {OK: "#2e7d32", HEALED: "#1565c0", DRIFT_LEFT: "#ef6c00", FAILED: "#c62828"}
STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.2em; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 1.6em; }
table { border-collapse: collapse; margin: .4em 0; }
th, td { border: 1px solid #ddd; padding: .25em .6em; text-align: left; vertical-align: top; }
th { background: #f4f4f4; }
.badge { color: #fff; border-radius: .7em; padding: .05em .6em; white-space: nowrap; }
code { background: #f4f4f4; padding: 0 .2em; }
.legend span { margin-right: 1.2em; } .muted { color: #666; }
"""


def _t(value: object) -> str:
    """Escaped, secret-free text."""
    return escape(safe.text(str(value)))


def _badge(result: str) -> str:
    colour = BADGE_COLOURS.get(result, "#555")
    return f'<span class="badge" style="background:{colour}">{_t(result)}</span>'


def _run_link(run: RunRecord, run_url: RunUrl) -> str:
    return (
        f'<a href="{escape(run_url(run))}" target="_top">{_t(run.run_id)}</a> '
        f'<span class="muted">{run.when:%Y-%m-%d %H:%M} UTC</span>'
    )


def page(data: PageData, run_url: RunUrl) -> str:
    """The whole page."""
    body = [
        "<h1>nova-audit</h1>",
        f'<p class="muted">Finished runs since {data.since:%Y-%m-%d %H:%M} UTC, read from '
        f"their summary reports at {data.now:%Y-%m-%d %H:%M} UTC.</p>",
    ]
    if not data.last_runs:
        body.append("<p>No finished nova-audit run in this period.</p>")
    else:
        body += [
            _tasks(data, run_url),
            _cells(data.cells, run_url),
            _findings(data.cells),
            _charts(data, run_url),
        ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        "<title>nova-audit</title>"
        f"<style>{STYLE}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n"
    )


def _tasks(data: PageData, run_url: RunUrl) -> str:
    rows = []
    for task, run in data.last_runs.items():
        report = run.report
        counts = (
            f"<td>{_t(report.mode)}</td><td>{report.counts.drifted}</td>"
            f"<td>{report.counts.fixed}</td>"
            if report
            else '<td colspan="3">no summary report: read the run\'s logs</td>'
        )
        rows.append(
            f'<tr data-task="{_t(task)}"><td>{_t(task)}</td><td>{_badge(run.result)}</td>'
            f"{counts}<td>{_run_link(run, run_url)}</td></tr>"
        )
    return (
        '<h2>Last run per task</h2><table id="tasks"><tr><th>Task</th><th>Result</th>'
        "<th>Mode</th><th>Findings</th><th>Fixed</th><th>Run</th></tr>" + "".join(rows) + "</table>"
    )


def _cells(cells: list[CellResult], run_url: RunUrl) -> str:
    rows = [
        f'<tr data-task="{_t(c.task)}" data-cell="{_t(c.cell)}" data-result="{_t(c.result)}">'
        f"<td>{_t(c.task)}</td><td>{_t(c.cell)}</td><td>{_badge(c.result)}{_capped(c)}</td>"
        f"<td>{len(c.open_findings)}</td><td>{c.fixed}</td>"
        f"<td>{_run_link(c.run, run_url)}</td></tr>"
        for c in cells
    ]
    return (
        "<h2>Last result per task and cell</h2>"
        '<table id="cells"><tr><th>Task</th><th>Cell</th><th>Result</th><th>Open</th>'
        "<th>Fixed</th><th>Last run that checked it</th></tr>" + "".join(rows) + "</table>"
    )


def _capped(cell: CellResult) -> str:
    if not cell.capped:
        return ""
    return (
        ' <span class="muted" title="the report was capped for XCom">(capped: see the log)</span>'
    )


def _findings(cells: list[CellResult]) -> str:
    rows = [
        f'<tr data-task="{_t(c.task)}" data-cell="{_t(c.cell)}"><td>{_t(c.task)}</td>'
        f"<td>{_t(c.cell)}</td><td>{_t(f.kind)}</td><td>{_t(f.object_id)}</td>"
        f"<td>{_t(f.problem)}</td><td>{_t(f.status.value)}</td>"
        f"<td>{f'<code>{_t(f.fix)}</code>' if f.fix else _t(f.action)}</td></tr>"
        for c in cells
        for f in c.open_findings
    ]
    truncated = _truncated(cells)
    note = (
        f'<p class="muted">{truncated} more finding(s) were not kept in the reports '
        "(capped for XCom); the runs' logs list them.</p>"
        if truncated
        else ""
    )
    if not rows:
        return "<h2>Open findings</h2><p>None: every cell's last run left nothing to fix.</p>"
    return (
        '<h2>Open findings</h2><table id="findings"><tr><th>Task</th><th>Cell</th><th>Kind</th>'
        "<th>Object</th><th>Problem</th><th>Status</th><th>Fix</th></tr>"
        + "".join(rows)
        + "</table>"
        + note
    )


def _truncated(cells: list[CellResult]) -> int:
    """Findings the reports of these cells' runs dropped (capped for XCom), each run once."""
    runs = {(c.run.dag_id, c.run.run_id): c.run.report for c in cells}
    return sum(int(r.details.get("findings_truncated", 0)) for r in runs.values() if r)


def _charts(data: PageData, run_url: RunUrl) -> str:
    legend = "".join(
        f'<span><svg width="10" height="10"><circle cx="5" cy="5" r="4" fill="{colour}"/></svg> '
        f"{name} per run</span>"
        for name, colour in chart.SERIES
    )
    parts = ["<h2>Drift over time</h2>", f'<p class="legend">{legend} (a point opens its run)</p>']
    for task, runs in data.history.items():
        parts.append(f'<h3 data-chart="{_t(task)}">{_t(task)}</h3>')
        parts.append(chart.svg(runs, data.since, data.now, run_url, f"{task}: drift per run"))
    return "\n".join(parts)
