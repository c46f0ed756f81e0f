"""Drift over time as an inline SVG: findings and fixes per run, each point a link to its run.

Generated here so the page needs no JavaScript library, no CDN and no asset.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from html import escape

from nova_audit_ops.glue.page import safe
from nova_audit_ops.glue.page.data import RunRecord

WIDTH, HEIGHT = 640, 170
LEFT, RIGHT, TOP, BOTTOM = 40, 10, 12, 28
SERIES = (("findings", "#c0392b"), ("fixed", "#27ae60"))
RADIUS = {"findings": 5, "fixed": 3}  # a fixed point stays visible on a findings point


def _value(run: RunRecord, series: str) -> int:
    if run.report is None:
        return 0
    return run.report.counts.drifted if series == "findings" else run.report.counts.fixed


def svg(
    runs: Sequence[RunRecord],
    since: dt.datetime,
    now: dt.datetime,
    run_url: Callable[[RunRecord], str],
    title: str,
) -> str:
    """One task's chart: x is time over [since, now], y the count; a link on every point."""
    span = max((now - since).total_seconds(), 1.0)
    top = max([1, *(_value(r, s) for r in runs for s, _ in SERIES)])
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(run: RunRecord) -> float:
        return LEFT + plot_w * min(max((run.when - since).total_seconds() / span, 0.0), 1.0)

    def y(value: int) -> float:
        return TOP + plot_h * (1 - value / top)

    parts = [
        f'<svg class="chart" role="img" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
        *_axes(since, now, top, y),
    ]
    for series, colour in SERIES:
        points = " ".join(f"{x(r):.1f},{y(_value(r, series)):.1f}" for r in runs)
        parts.append(
            f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{points}"/>'
        )
        parts += [_point(r, series, colour, x(r), y(_value(r, series)), run_url) for r in runs]
    parts.append("</svg>")
    return "\n".join(parts)


def _axes(since: dt.datetime, now: dt.datetime, top: int, y: Callable[[int], float]) -> list[str]:
    bottom, right = HEIGHT - BOTTOM, WIDTH - RIGHT
    label = 'font-size="10" fill="#555"'
    return [
        f'<line x1="{LEFT}" y1="{bottom}" x2="{right}" y2="{bottom}" stroke="#999"/>',
        f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{bottom}" stroke="#999"/>',
        f'<text x="{LEFT - 4}" y="{y(top) + 4:.1f}" text-anchor="end" {label}>{top}</text>',
        f'<text x="{LEFT - 4}" y="{bottom + 4}" text-anchor="end" {label}>0</text>',
        f'<text x="{LEFT}" y="{HEIGHT - 8}" {label}>{since:%Y-%m-%d}</text>',
        f'<text x="{right}" y="{HEIGHT - 8}" text-anchor="end" {label}>{now:%Y-%m-%d %H:%M}</text>',
    ]


def _point(
    run: RunRecord,
    series: str,
    colour: str,
    cx: float,
    cy: float,
    run_url: Callable[[RunRecord], str],
) -> str:
    tip = safe.text(f"{run.run_id} ({run.when:%Y-%m-%d %H:%M} UTC): {_value(run, series)} {series}")
    return (
        f'<a class="point" href="{escape(run_url(run))}" target="_top" '
        f'data-series="{series}" data-run-id="{escape(run.run_id)}">'
        f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="{RADIUS[series]}" fill="{colour}">'
        f"<title>{escape(tip)}</title></circle></a>"
    )
