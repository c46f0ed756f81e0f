"""Benchmark: archive and purge 20,000 soft-deleted instances, nova-audit vs nova-manage.

    .venv/bin/python -m benchmarks.archive [--instances 20000]

Brings up a one-cell MariaDB test bed, soft-deletes every instance (their child
rows move with them: ~14 rows per instance), clones it three times and moves
the same rows with `nova-audit run archive_deleted_rows`, `nova-manage db
archive_deleted_rows --until-complete` and plain SQL (INSERT...SELECT/DELETE in
1,000-instance chunks, the physical limit). Then purges the shadow tables of
the first two copies with `nova-audit run purge` and `nova-manage db purge`.
Checks that the copies end with the same rows and prints rows/s and the longest
transaction of each.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from typing import Any

import sqlalchemy as sa

import testbed
from benchmarks.common import WORK, Timing, nova_audit_command, print_table, timed
from nova_audit_ops.nova.shadow import ShadowPlan, reflect_plan

BEFORE = "2100-01-01 00:00:00"


def checksums(bed: Any) -> dict[str, str]:
    shot = testbed.snapshot_tables(bed.cells[-1].url)
    return {table: value.split("/ai=")[0] for table, value in shot.items()}


def shadow_rows(url: str) -> int:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            names = [n for n in sa.inspect(conn).get_table_names() if n.startswith("shadow_")]
            return sum(
                conn.execute(sa.text(f"SELECT COUNT(*) FROM `{n}`")).scalar_one() for n in names
            )
    finally:
        engine.dispose()


def soft_delete_everything(url: str) -> None:
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "UPDATE instances SET deleted = id, deleted_at = '2020-01-01', "
                    "vm_state = 'deleted' WHERE deleted = 0"
                )
            )
    finally:
        engine.dispose()


def plain_sql(url: str, chunk: int = 1000) -> tuple[float, int, float]:
    """Move every deleted instance and its children with hand-made set SQL."""
    engine = sa.create_engine(url)
    plan = reflect_plan(engine)
    instances = next(t for t in plan.tables if t.name == "instances")
    start, moved, longest = time.perf_counter(), 0, 0.0
    try:
        while True:
            with engine.connect() as conn:
                ids = list(
                    conn.execute(
                        sa.select(instances.c.id)
                        .where(instances.c.deleted != 0)
                        .order_by(instances.c.id)
                        .limit(chunk)
                    ).scalars()
                )
            if not ids:
                break
            began = time.perf_counter()
            with engine.begin() as conn:
                where = instances.c.id.in_(ids)
                for table, clause in [
                    *_descendants(conn, plan, instances, where),
                    (instances, where),
                ]:
                    cols = [c.name for c in table.columns]
                    conn.execute(
                        plan.shadow_of(table)
                        .insert()
                        .from_select(cols, sa.select(*table.columns).where(clause))
                    )
                    moved += conn.execute(table.delete().where(clause)).rowcount
            longest = max(longest, time.perf_counter() - began)
    finally:
        engine.dispose()
    return time.perf_counter() - start, moved, longest


def _descendants(
    conn: sa.Connection, plan: ShadowPlan, table: sa.Table, where: Any
) -> list[tuple[sa.Table, Any]]:
    """Child rows of the selected rows, grandchildren first, keys read once per level."""
    out: list[tuple[sa.Table, Any]] = []
    for edge in plan.children.get(table.name, []):
        values = list(conn.execute(sa.select(edge.parent_column).where(where)).scalars())
        if values:
            child_where = edge.child_column.in_(values)
            out += _descendants(conn, plan, edge.child, child_where)
            out.append((edge.child, child_where))
    return out


def ours(bed: Any, task: str, batch_size: int) -> tuple[Timing, dict[str, Any]]:
    timing = timed(
        "nova-audit",
        nova_audit_command(
            "run",
            task,
            "--config-file",
            str(bed.config_path),
            "--mode",
            "heal",
            "--before",
            BEFORE,
            "--time-budget",
            "0",
            "--batch-size",
            str(batch_size),
            "--json",
        ),
    )
    try:
        report = json.loads(timing.output)
    except ValueError:
        report = {"details": {}}
    return timing, report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=20_000)
    parser.add_argument("--batch-size", type=int, default=5000, help="nova-audit rows per batch")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    work = WORK / "archive"
    shutil.rmtree(work, ignore_errors=True)
    print(f"seeding one cell with {args.instances} instances, then soft-deleting all ...")
    bed = testbed.up(
        work / "ours",
        backend="mariadb",
        cells=1,
        hosts_per_cell=20,
        instances_per_cell=args.instances,
    )
    twins: list[Any] = []
    try:
        soft_delete_everything(bed.cells[-1].url)
        nova = testbed.clone(bed, work / "nova")
        sql = testbed.clone(bed, work / "sql")
        twins = [nova, sql]
        cell_url = bed.cells[-1].url

        a_ours, a_report = ours(bed, "archive_deleted_rows", args.batch_size)
        rows = shadow_rows(cell_url)
        a_nova = timed(
            "nova-manage",
            testbed.nova_manage_command(
                nova,
                "db",
                "archive_deleted_rows",
                "--until-complete",
                "--all-cells",
                "--before",
                BEFORE,
            ),
        )
        sql_seconds, sql_rows, sql_longest = plain_sql(sql.cells[-1].url)
        same_archive = checksums(bed) == checksums(nova)

        p_ours, p_report = ours(bed, "purge", 5000)
        p_nova = timed(
            "nova-manage",
            testbed.nova_manage_command(nova, "db", "purge", "--before", BEFORE, "--all-cells"),
        )
        same_purge = checksums(bed) == checksums(nova)

        def longest(report: dict[str, Any]) -> str:
            values = report.get("details", {}).get("longest_transaction_s", {}).values()
            return f"{max(values, default=0):.2f}"

        table = [
            [
                "archive",
                "nova-audit",
                rows,
                f"{a_ours.seconds:.1f}",
                f"{rows / a_ours.seconds:,.0f}",
                longest(a_report),
                f"{a_ours.max_rss_mb:.0f}",
                a_ours.returncode,
            ],
            [
                "archive",
                "nova-manage",
                rows,
                f"{a_nova.seconds:.1f}",
                f"{rows / a_nova.seconds:,.0f}",
                "-",
                f"{a_nova.max_rss_mb:.0f}",
                a_nova.returncode,
            ],
            [
                "archive",
                "plain SQL",
                sql_rows,
                f"{sql_seconds:.1f}",
                f"{sql_rows / sql_seconds:,.0f}",
                f"{sql_longest:.2f}",
                "-",
                0,
            ],
            [
                "purge",
                "nova-audit",
                rows,
                f"{p_ours.seconds:.1f}",
                f"{rows / p_ours.seconds:,.0f}",
                longest(p_report),
                f"{p_ours.max_rss_mb:.0f}",
                p_ours.returncode,
            ],
            [
                "purge",
                "nova-manage",
                rows,
                f"{p_nova.seconds:.1f}",
                f"{rows / p_nova.seconds:,.0f}",
                "one DELETE per table",
                f"{p_nova.max_rss_mb:.0f}",
                p_nova.returncode,
            ],
        ]
        print_table(
            f"archive/purge: {args.instances} soft-deleted instances in one cell (MariaDB)",
            table,
            ["step", "tool", "rows", "seconds", "rows/s", "longest txn s", "peak RSS MB", "exit"],
        )
        print(
            f"\narchive: {a_nova.seconds / a_ours.seconds:.1f}x nova-manage's rate, "
            f"{sql_seconds / a_ours.seconds:.0%} of plain SQL's"
        )
        print(f"purge: {p_nova.seconds / p_ours.seconds:.0%} of nova-manage's rate")
        print("same rows after archive" if same_archive else "MISMATCH after archive")
        print("same rows after purge" if same_purge else "MISMATCH after purge")
        return 0 if same_archive and same_purge else 1
    finally:
        if not args.keep:
            for twin in twins:
                testbed.down(twin.dir)
            testbed.down(bed.dir)


if __name__ == "__main__":
    raise SystemExit(main())
