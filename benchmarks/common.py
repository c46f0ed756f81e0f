"""Helpers shared by the benchmarks: timing commands and printing tables."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WORK = REPO / "benchmarks" / ".work"


@dataclass
class Timing:
    """How long one tool took, and how much memory its process used."""

    tool: str
    seconds: float
    max_rss_mb: float
    returncode: int
    output: str


def timed(tool: str, command: Sequence[str]) -> Timing:
    """Run a command to completion; its wall time and its own peak RSS (wait4)."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        list(command), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO
    )
    assert proc.stdout is not None
    output = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    return Timing(tool, seconds, usage.ru_maxrss / 1024.0, proc.returncode, output)


def nova_audit_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "nova_audit_ops.cli", *args]


def print_table(title: str, rows: Sequence[Sequence[object]], headers: Sequence[str]) -> None:
    widths = [max(len(str(x)) for x in column) for column in zip(headers, *rows, strict=False)]
    print(f"\n{title}")
    print("  ".join(str(h).ljust(w) for h, w in zip(headers, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print("  ".join(str(x).ljust(w) for x, w in zip(row, widths, strict=True)))
