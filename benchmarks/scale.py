"""Benchmark: growth curves of every task from 10,000 to 300,000 instances over 10 and 30 cells.

    .venv/bin/python -m benchmarks.scale [--sizes 10000,30000] [--cells 10] [--tasks T,...]
                                         [--skip-nova-manage] [--report results.jsonl]

Per size and cell count: a synthetic cloud (testbed/scale_seed.py) with 2 % drift
for every writing task; every task's audit run from the CLI, then its heal run
(purge after archive's heal, so it has shadow rows); then nova-manage's
equivalent on a clone with its own Placement, each command under a timeout (30
min) and skipped at larger sizes once it timed out. Per run: wall time, SQL
statements the process sent (benchmarks/scale_probe.py), Placement requests (its
request log), peak RSS (wait4). Results go to benchmarks/.work/scale/results.jsonl
as they come; the tables and log-log slopes are printed at the end
(benchmarks/scale_report.py).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import testbed
from benchmarks.archive import BEFORE
from benchmarks.common import REPO, WORK
from benchmarks.heal_allocations import placement_requests
from benchmarks.scale_probe import peak_rss_mb
from benchmarks.scale_report import print_report
from testbed.scale_seed import inject, scale_up

RESULTS = WORK / "scale" / "results.jsonl"
NOVA_MANAGE_TIMEOUT = 1800.0
# Audit first (every task on the drifted cloud), then heals in dependency order;
# purge last, after archive's heal has filled the shadow tables.
AUDITED = (
    "discover_hosts",
    "map_instances",
    "heal_instance_mappings",
    "heal_allocations",
    "sync_aggregates",
    "orphaned_allocations",
    "archive_deleted_rows",
)
HEALED = (
    "discover_hosts",
    "map_instances",
    "heal_instance_mappings",
    "heal_allocations",
    "sync_aggregates",
    "archive_deleted_rows",
)
EXTRA = {"archive_deleted_rows": ["--before", BEFORE], "purge": ["--before", BEFORE]}
# nova-manage's equivalent of each task's heal (orphaned_allocations: its audit).
NOVA_MANAGE: dict[str, list[str]] = {
    "discover_hosts": ["cell_v2", "discover_hosts"],
    "map_instances": ["cell_v2", "map_instances", "--cell_uuid", "{cell}"],
    "heal_allocations": ["placement", "heal_allocations", "--skip-port-allocations"],
    "sync_aggregates": ["placement", "sync_aggregates"],
    "orphaned_allocations": ["placement", "audit"],
    "archive_deleted_rows": [
        *("db", "archive_deleted_rows", "--until-complete", "--all-cells"),
        *("--before", BEFORE),
    ],
    "purge": ["db", "purge", "--before", BEFORE, "--all-cells"],
}


@dataclass
class Run:
    """One measured process: which tool ran which task how, and what it cost."""

    instances: int
    cells: int
    task: str
    mode: str
    tool: str
    seconds: float
    queries: int | None
    placement: int
    rss_mb: float
    exit: int
    examined: int | None = None
    drifted: int | None = None
    fixed: int | None = None


def measure(command: list[str], bed: Any, timeout: float) -> tuple[float, float, int, int, str]:
    """(seconds, peak RSS MB, exit, Placement requests, output) of one process.

    The peak RSS is the process's own VmHWM, sampled every 0.2 s (wait4's
    ru_maxrss would carry this benchmark's own memory over the child's exec); a
    process past `timeout` is killed and exits -9.
    """
    before = placement_requests(bed)
    start = time.perf_counter()
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO
    )
    killer = threading.Timer(max(timeout, 1.0), proc.kill)
    killer.start()
    peak = [0.0]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.2):
            peak[0] = max(peak[0], peak_rss_mb(str(proc.pid)))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        assert proc.stdout is not None
        output = proc.stdout.read()
        _, status, _ = os.wait4(proc.pid, 0)
    finally:
        killer.cancel()
        done.set()
        sampler.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - start
    return seconds, peak[0], proc.returncode, placement_requests(bed) - before, output


def report_counts(output: str) -> dict[str, Any] | None:
    """The counts of the JSON report in a run's output, after any log lines before it."""
    start = output.find("\n{") + 1 if not output.startswith("{") else 0
    try:
        return dict(json.loads(output[start:]).get("counts", {}))
    except ValueError:
        return None


def ours(bed: Any, size: tuple[int, int], task: str, mode: str) -> Run:
    counter = bed.dir / "queries.txt"
    counter.unlink(missing_ok=True)
    command = [
        sys.executable,
        *("-m", "benchmarks.scale_probe", str(counter)),
        *("run", task, "--config-file", str(bed.config_path), "--mode", mode, "--json"),
        *("--time-budget", "0", *EXTRA.get(task, [])),
    ]
    seconds, rss, code, requests, output = measure(command, bed, NOVA_MANAGE_TIMEOUT)
    (bed.dir / f"{task}-{mode}.out").write_text(output, encoding="utf-8")  # whole, for causes
    counts = report_counts(output)
    if counts is None:
        print(f"--- {task} {mode}: no JSON report ---\n{output[-2000:]}")
        counts = {}
    probe = json.loads(counter.read_text()) if counter.exists() else {}
    queries = probe.get("queries")
    rss = max(rss, probe.get("rss_mb", 0.0))
    return Run(
        *size,
        task,
        mode,
        "nova-audit",
        round(seconds, 2),
        queries,
        requests,
        round(rss, 1),
        code,
        counts.get("examined"),
        counts.get("drifted"),
        counts.get("fixed"),
    )


def theirs(twin: Any, size: tuple[int, int], task: str, timeout: float) -> Run:
    """nova-manage's equivalent (per compute cell where it takes one cell), summed."""
    total, rss, requests, worst = 0.0, 0.0, 0, 0
    cells = [c.uuid for c in twin.compute_cells] if "{cell}" in NOVA_MANAGE[task] else [""]
    for cell in cells:
        args = [a.replace("{cell}", cell) for a in NOVA_MANAGE[task]]
        seconds, peak, code, sent, output = measure(
            testbed.nova_manage_command(twin, *args), twin, timeout - total
        )
        total, rss, requests = total + seconds, max(rss, peak), requests + sent
        worst = code if code not in (0, 1, 4) else worst  # 1: rows archived; 4: nothing to do
        if code not in (0, 1, 4):
            print(f"--- nova-manage {' '.join(args)} exit {code} ---\n{output[-1500:]}")
        if total >= timeout:
            worst = -9
            break
    return Run(*size, task, "heal", "nova-manage", round(total, 2), None, requests, rss, worst)


def record(run: Run) -> None:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with RESULTS.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(asdict(run)) + "\n")
    print(
        f"  {run.tool:11} {run.task:24} {run.mode:5} {run.seconds:8.1f} s  "
        f"queries {run.queries}  placement {run.placement}  RSS {run.rss_mb:.0f} MB  "
        f"exit {run.exit}  drifted {run.drifted} fixed {run.fixed}",
        flush=True,
    )


def one_size(args: argparse.Namespace, instances: int, cells: int, timed_out: set[str]) -> None:
    size = (instances, cells)
    work = WORK / "scale" / f"{instances}x{cells}"
    started = time.perf_counter()
    print(f"\nseeding {instances} instances over {cells} cells ...", flush=True)
    bed = scale_up(work / "ours", instances, cells)
    seeded = time.perf_counter() - started
    changes = inject(bed)
    drifted = time.perf_counter() - started - seeded
    record(Run(*size, "seed", f"{drifted:.0f}s drift", "testbed", round(seeded, 2), None, 0, 0, 0))
    print("  drift: " + ", ".join(f"{k} {len(v)}" for k, v in changes.items()))
    twin = None
    try:
        if not args.skip_nova_manage:
            twin = testbed.clone(bed, work / "nova", with_placement=True)
        tasks = args.tasks
        for task in [t for t in AUDITED if t in tasks]:
            record(ours(bed, size, task, "audit"))
        for task in [t for t in HEALED if t in tasks]:
            record(ours(bed, size, task, "heal"))
        if "purge" in tasks:
            record(ours(bed, size, "purge", "audit"))
            record(ours(bed, size, "purge", "heal"))
        for task in [t for t in NOVA_MANAGE if t in tasks and twin is not None]:
            if task in timed_out:
                print(f"  nova-manage {task}: skipped (timed out at a smaller size)")
                continue
            run = theirs(twin, size, task, args.nova_manage_timeout)
            record(run)
            if run.exit == -9:
                timed_out.add(task)
    finally:
        if not args.keep:
            if twin is not None:
                testbed.down(twin.dir)
            testbed.down(bed.dir)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,30000,100000,300000")
    parser.add_argument("--cells", default="10,30")
    parser.add_argument("--tasks", default=",".join([*AUDITED, "purge"]))
    parser.add_argument("--skip-nova-manage", action="store_true")
    parser.add_argument("--nova-manage-timeout", type=float, default=NOVA_MANAGE_TIMEOUT)
    parser.add_argument("--keep", action="store_true", help="leave the test beds up")
    parser.add_argument("--report", type=Path, help="only print the report of a results file")
    parser.add_argument(
        "--append", action="store_true", help="add to the results file (sweeps in several runs)"
    )
    args = parser.parse_args()
    if args.report:
        print_report(args.report)
        return 0
    args.tasks = [t for t in args.tasks.split(",") if t]
    unknown = set(args.tasks) - {*AUDITED, "purge"}
    if unknown:
        parser.error(f"unknown task(s) {', '.join(sorted(unknown))}: choose from {AUDITED}, purge")
    if not args.append:
        RESULTS.unlink(missing_ok=True)
    timed_out: set[str] = set()
    for cells in [int(c) for c in args.cells.split(",")]:
        for instances in [int(s) for s in args.sizes.split(",")]:
            one_size(args, instances, cells, timed_out)
    print_report(RESULTS)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
