"""The fan-out planner on a big table: time, statements and memory to plan one cell.

A table shaped like `instances` for the planner (id primary key, `deleted`, a
200-byte row body) with N rows, filled by MariaDB's sequence engine in one
statement, in a database of its own (dropped at the end). Planned on every row
(map_instances, volume_attachments) and on live rows (heal_allocations), at
several `fanout_instances`, the smallest forcing the 64-range cap.

    .venv/bin/python -m benchmarks.fanout_plan [--rows 300000]
"""

from __future__ import annotations

import argparse
import resource
import time

import sqlalchemy as sa

from nova_audit_ops.engine.batches import MAX_RANGES_PER_CELL, plan_ranges
from nova_audit_ops.settings.spec import RangeSupport
from testbed.backends import DEFAULT_ADMIN_URL

DATABASE = "fanout_plan_bench"
ROW = "{:<10} {:>8} {:>7} {:>10} {:>8} {:>7}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=300_000)
    rows = parser.parse_args().rows
    admin = sa.create_engine(DEFAULT_ADMIN_URL, poolclass=sa.pool.NullPool)
    with admin.begin() as conn:
        conn.execute(sa.text(f"DROP DATABASE IF EXISTS {DATABASE}"))
        conn.execute(sa.text(f"CREATE DATABASE {DATABASE}"))
    engine = sa.create_engine(DEFAULT_ADMIN_URL.replace("/?", f"/{DATABASE}?"))
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "CREATE TABLE instances (id INT PRIMARY KEY, deleted INT NOT NULL, "
                    "body VARCHAR(255))"
                )
            )
            conn.execute(
                sa.text(
                    "INSERT INTO instances SELECT seq, IF(seq % 10 = 0, seq, 0), "
                    f"REPEAT('x', 200) FROM seq_1_to_{rows}"
                )
            )
        measure(engine, rows)
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {DATABASE}"))
        admin.dispose()


def measure(engine: sa.Engine, rows: int) -> None:
    statements = [0]
    sa.event.listen(
        engine, "before_cursor_execute", lambda *_a: statements.__setitem__(0, statements[0] + 1)
    )
    print(f"{rows:,} rows; at most {MAX_RANGES_PER_CELL} ranges per cell")
    print(ROW.format("rows read", "fanout", "ranges", "statements", "seconds", "RSS MB"))
    for live_only in (False, True):
        for size in (50_000, 5_000, 1_000):
            statements[0] = 0
            start = time.perf_counter()
            ranges = plan_ranges(
                engine, RangeSupport("instances", live_only=live_only), 0, size, 64
            )
            seconds = time.perf_counter() - start
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            what = "live" if live_only else "all"
            print(
                ROW.format(
                    what, f"{size:,}", len(ranges), statements[0], f"{seconds:.3f}", f"{rss:.0f}"
                )
            )


if __name__ == "__main__":
    main()
