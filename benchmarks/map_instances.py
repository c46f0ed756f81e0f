"""Benchmark: map N unmapped instances of one cell, nova-audit vs nova-manage.

    .venv/bin/python -m benchmarks.map_instances --instances 100000

Brings up a one-cell MariaDB test bed with N instances, removes all their
instance mappings, clones it, then maps them with `nova-audit run map_instances
--mode heal` on one copy and `nova-manage cell_v2 map_instances` on the other,
checks both created the same mappings, and prints the timings.
"""

from __future__ import annotations

import argparse
import shutil

import sqlalchemy as sa

import testbed
from benchmarks.common import WORK, Timing, nova_audit_command, print_table, timed


def mapping_count(url: str) -> int:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            query = "SELECT COUNT(*) FROM instance_mappings WHERE cell_id IS NOT NULL"
            return int(conn.execute(sa.text(query)).scalar() or 0)
    finally:
        engine.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=5000)
    parser.add_argument("--keep", action="store_true", help="leave the test beds up")
    args = parser.parse_args()

    shutil.rmtree(WORK / "map_instances", ignore_errors=True)
    print(f"seeding one cell with {args.instances} instances ...", flush=True)
    bed = testbed.up(
        WORK / "map_instances" / "ours",
        backend="mariadb",
        cells=1,
        hosts_per_cell=20,
        instances_per_cell=args.instances,
    )
    twin = None
    try:
        testbed.drift(bed, "unmapped_instances", args.instances * 2)
        twin = testbed.clone(bed, WORK / "map_instances" / "nova")
        cell = next(c for c in bed.cells if c.name == "cell1")
        expected = mapping_count(bed.api_url)

        ours = timed(
            "nova-audit",
            nova_audit_command(
                "run",
                "map_instances",
                "--config-file",
                str(bed.config_path),
                "--mode",
                "heal",
                "--cell",
                "cell1",
                "--batch-size",
                str(args.batch_size),
                "--time-budget",
                "0",
            ),
        )
        theirs = timed(
            "nova-manage",
            testbed.nova_manage_command(twin, "cell_v2", "map_instances", "--cell_uuid", cell.uuid),
        )
        report(
            ours,
            theirs,
            args.instances,
            mapping_count(bed.api_url) - expected,
            mapping_count(twin.api_url) - expected,
        )
        return 0 if ours.returncode == 0 and theirs.returncode == 0 else 1
    finally:
        if not args.keep:
            if twin is not None:
                testbed.down(twin.dir)
            testbed.down(bed.dir)


def report(ours: Timing, theirs: Timing, n: int, ours_made: int, theirs_made: int) -> None:
    rows = [
        [
            t.tool,
            made,
            f"{t.seconds:.1f}",
            f"{made / t.seconds:,.0f}" if t.seconds else "-",
            f"{t.max_rss_mb:.0f}",
            t.returncode,
        ]
        for t, made in ((ours, ours_made), (theirs, theirs_made))
    ]
    print_table(
        f"map_instances: {n} unmapped instances in one cell (MariaDB)",
        rows,
        ["tool", "mappings made", "seconds", "mappings/s", "peak RSS MB", "exit"],
    )
    if ours.seconds:
        print(f"\nspeed-up: {theirs.seconds / ours.seconds:.1f}x")
    if ours_made != theirs_made:
        print(f"MISMATCH: nova-audit made {ours_made}, nova-manage made {theirs_made}")
    for t in (ours, theirs):
        if t.returncode not in (0,):
            print(f"--- {t.tool} output ---\n{t.output[-3000:]}")


if __name__ == "__main__":
    raise SystemExit(main())
