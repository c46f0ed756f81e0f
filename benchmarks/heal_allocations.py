"""Benchmark: heal missing allocations, nova-audit vs nova-manage, on identical copies.

    .venv/bin/python -m benchmarks.heal_allocations [--cells 2 --hosts 20 --instances 2000]

Brings up a MariaDB test bed (default 2 cells x 20 hosts x 2,000 instances),
removes the allocations of 2 % of its instances, clones it with its own
Placement, heals one copy with `nova-audit run heal_allocations --mode heal`
and the other with `nova-manage placement heal_allocations`, checks that both
leave Placement with the same allocations, and prints wall time, peak RSS and
the number of Placement requests each made (counted from Placement's own
request log).
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path
from typing import Any

import testbed
from benchmarks.common import WORK, Timing, nova_audit_command, print_table, timed


def placement_requests(bed: Any) -> int:
    log = Path(bed.dir) / "placement.log"
    with open(log, encoding="utf-8", errors="replace") as handle:
        return sum(1 for line in handle if "placement.requestlog" in line)


def allocations(bed: Any) -> dict[str, Any]:
    """consumer -> (project, user, {provider: resources}) — generations left out."""
    shot = testbed.snapshot_placement(bed)
    result: dict[str, Any] = {}
    for rp, provider in shot["providers"].items():
        for consumer, part in provider["allocations"].items():
            entry = result.setdefault(consumer, {"parts": {}})
            entry["parts"][rp] = part["resources"]
    for consumer, data in shot["consumers"].items():
        result.setdefault(consumer, {"parts": {}})
        result[consumer]["project_id"] = data.get("project_id")
        result[consumer]["user_id"] = data.get("user_id")
    return result


def measure(tool: str, bed: Any, command: list[str]) -> tuple[Timing, int]:
    before = placement_requests(bed)
    timing = timed(tool, command)
    return timing, placement_requests(bed) - before


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=2)
    parser.add_argument("--hosts", type=int, default=20)
    parser.add_argument("--instances", type=int, default=2000, help="per cell")
    parser.add_argument("--missing", type=float, default=0.02, help="share of instances")
    parser.add_argument("--keep", action="store_true", help="leave the test beds up")
    args = parser.parse_args()

    work = WORK / "heal_allocations"
    shutil.rmtree(work, ignore_errors=True)
    total = args.cells * args.instances
    print(f"seeding {args.cells} cells x {args.hosts} hosts x {args.instances} instances ...")
    bed = testbed.up(
        work / "ours",
        backend="mariadb",
        cells=args.cells,
        hosts_per_cell=args.hosts,
        instances_per_cell=args.instances,
    )
    twin = None
    try:
        removed = testbed.drift(bed, "missing_allocations", int(total * args.missing))
        twin = testbed.clone(bed, work / "nova", with_placement=True)
        ours, ours_requests = measure(
            "nova-audit",
            bed,
            nova_audit_command(
                "run",
                "heal_allocations",
                "--config-file",
                str(bed.config_path),
                "--mode",
                "heal",
                "--time-budget",
                "0",
            ),
        )
        theirs, theirs_requests = measure(
            "nova-manage",
            twin,
            testbed.nova_manage_command(
                twin, "placement", "heal_allocations", "--skip-port-allocations"
            ),
        )
        same = allocations(bed) == allocations(twin)
        rows = [
            [t.tool, f"{t.seconds:.1f}", requests, f"{t.max_rss_mb:.0f}", t.returncode]
            for t, requests in ((ours, ours_requests), (theirs, theirs_requests))
        ]
        print_table(
            f"heal_allocations: {total} instances, {len(removed)} missing allocations",
            rows,
            ["tool", "seconds", "placement requests", "peak RSS MB", "exit"],
        )
        if ours.seconds and ours_requests:
            print(
                f"\n{theirs.seconds / ours.seconds:.1f}x less wall time, "
                f"{theirs_requests / ours_requests:.1f}x fewer Placement requests"
            )
        print("same allocations in both copies" if same else "MISMATCH: allocations differ")
        for t in (ours, theirs):
            if t.returncode not in (0, 4):  # nova-manage: 0 healed, 4 nothing to do
                print(f"--- {t.tool} output ---\n{t.output[-3000:]}")
        return 0 if same else 1
    finally:
        if not args.keep:
            if twin is not None:
                testbed.down(twin.dir)
            testbed.down(bed.dir)


if __name__ == "__main__":
    raise SystemExit(main())
