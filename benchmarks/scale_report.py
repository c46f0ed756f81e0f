"""The tables and log-log slopes of benchmarks/scale.py's results file.

A slope is the least-squares fit of log(cost) against log(instances) over every
size measured for one (tool, task, mode): 1.0 is linear growth, 0 a flat cost.
Zero costs (no Placement request at any size) have no slope.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.common import print_table

METRICS = ("seconds", "queries", "placement", "rss_mb")
SLOPE_TARGET = 1.1
RSS_TARGET_MB = 250.0
FULL_AUDIT_TARGET_S = 600.0


def load(path: Path) -> list[dict[str, Any]]:
    """The runs of a results file, by cells and size; a run measured again (same size,
    tool, task, mode) counts once, the later one winning (sweeps appended in passes)."""
    latest: dict[tuple[Any, ...], dict[str, Any]] = {}
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                run = json.loads(line)
                key = (run["instances"], run["cells"], run["tool"], run["task"], run["mode"])
                latest.pop(key, None)
                latest[key] = run
    return sorted(latest.values(), key=lambda r: (r["cells"], r["instances"]))


def slope(points: Sequence[tuple[float, float]]) -> float | None:
    """Least-squares slope of log(y) on log(x); None with fewer than two usable sizes."""
    usable = [(math.log(x), math.log(y)) for x, y in points if x > 0 and y and y > 0]
    if len({x for x, _ in usable}) < 2:
        return None
    mean_x = sum(x for x, _ in usable) / len(usable)
    mean_y = sum(y for _, y in usable) / len(usable)
    num = sum((x - mean_x) * (y - mean_y) for x, y in usable)
    den = sum((x - mean_x) ** 2 for x, _ in usable)
    return num / den


def slopes(runs: list[dict[str, Any]]) -> list[list[object]]:
    """One row per (tool, task, mode): the slope of each metric, over every size."""
    series: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for run in runs:
        if run["tool"] != "testbed":
            series[(run["tool"], run["task"], run["mode"])].append(run)
    rows: list[list[object]] = []
    for (tool, task, mode), points in sorted(series.items()):
        row: list[object] = [tool, task, mode, len(points)]
        for metric in METRICS:
            value = slope([(p["instances"], p[metric] or 0) for p in points])
            mark = "" if value is None or value <= SLOPE_TARGET or metric == "rss_mb" else " !"
            row.append("-" if value is None else f"{value:.2f}{mark}")
        rows.append(row)
    return rows


def ratios(runs: list[dict[str, Any]]) -> list[list[object]]:
    """nova-manage's time over nova-audit's for the same task, size and data."""
    ours = {
        (r["instances"], r["cells"], r["task"]): r
        for r in runs
        if r["tool"] == "nova-audit"
        and (r["mode"] == "heal" or r["task"] == "orphaned_allocations")
    }
    rows: list[list[object]] = []
    for run in runs:
        if run["tool"] != "nova-manage":
            continue
        mine = ours.get((run["instances"], run["cells"], run["task"]))
        timed_out = run["exit"] == -9
        ratio = "-" if mine is None or not mine["seconds"] else run["seconds"] / mine["seconds"]
        rows.append(
            [
                run["instances"],
                run["cells"],
                run["task"],
                f"{mine['seconds']:.1f}" if mine else "-",
                f"{run['seconds']:.1f}" + (" (timeout)" if timed_out else ""),
                (">" if timed_out else "") + (f"{ratio:.1f}x" if ratio != "-" else "-"),
                run["placement"],
            ]
        )
    return rows


def full_audits(runs: list[dict[str, Any]]) -> list[list[object]]:
    """Per size: every task's audit, one after another from the CLI, and the peak RSS."""
    sums: dict[tuple[int, int], list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
    for run in runs:
        if run["tool"] == "nova-audit" and run["mode"] == "audit":
            total = sums[(run["instances"], run["cells"])]
            total[0] += run["seconds"]
            total[1] = max(total[1], run["rss_mb"])
            total[2] += 1
    return [
        [n, c, int(k), f"{s:.1f}", "met" if s <= FULL_AUDIT_TARGET_S else "MISSED", f"{m:.0f}"]
        for (n, c), (s, m, k) in sorted(sums.items())
    ]


def print_report(path: Path) -> None:
    runs = load(path)
    print_table(
        f"every run ({path})",
        [
            [
                r["instances"],
                r["cells"],
                r["tool"],
                r["task"],
                r["mode"],
                f"{r['seconds']:.1f}",
                "-" if r["queries"] is None else r["queries"],
                r["placement"],
                f"{r['rss_mb']:.0f}",
                r["exit"],
                "-" if r.get("drifted") is None else r["drifted"],
                "-" if r.get("fixed") is None else r["fixed"],
            ]
            for r in runs
        ],
        [
            *("instances", "cells", "tool", "task", "mode", "s", "queries", "placement"),
            *("RSS MB", "exit", "drifted", "fixed"),
        ],
    )
    print_table(
        f"log-log slopes against instances ('!' = above {SLOPE_TARGET})",
        slopes(runs),
        ["tool", "task", "mode", "sizes", *METRICS],
    )
    peak = max((r["rss_mb"] for r in runs if r["tool"] == "nova-audit"), default=0.0)
    print(f"\npeak RSS of any nova-audit run: {peak:.0f} MB (target {RSS_TARGET_MB:.0f} MB)")
    print_table(
        f"full audit from the CLI (target {FULL_AUDIT_TARGET_S:.0f} s)",
        full_audits(runs),
        ["instances", "cells", "tasks", "seconds", "target", "peak RSS MB"],
    )
    print_table(
        "nova-manage on a clone of the same data",
        ratios(runs),
        ["instances", "cells", "task", "nova-audit s", "nova-manage s", "ratio", "placement"],
    )
