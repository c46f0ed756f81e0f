"""The fan-out planner on a real MariaDB table: ranges, the cap, ids-only reads."""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from nova_audit_ops.engine.batches import MAX_UNITS, plan_ranges, ranges_per_cell
from nova_audit_ops.engine.ranges import IdRange
from nova_audit_ops.settings.spec import RangeSupport
from testbed.backends import DEFAULT_ADMIN_URL
from tests.conftest import require_mariadb

DATABASE = "fanout_planner_test"
ROWS = 1000


@pytest.fixture(scope="module")
def items() -> Iterator[tuple[sa.Engine, list[tuple[int, int, int]]]]:
    """A table `items` (id with gaps, deleted, cell_id) in a database of this test's own."""
    require_mariadb()
    admin = sa.create_engine(DEFAULT_ADMIN_URL, poolclass=sa.pool.NullPool)
    with admin.begin() as conn:
        conn.execute(sa.text(f"DROP DATABASE IF EXISTS {DATABASE}"))
        conn.execute(sa.text(f"CREATE DATABASE {DATABASE}"))
    engine = sa.create_engine(DEFAULT_ADMIN_URL.replace("/?", f"/{DATABASE}?"))
    rng = random.Random(12)  # noqa: S311 - test data, not secrets
    rows, next_id = [], 0
    for _ in range(ROWS):
        next_id += rng.choice((1, 1, 2, 7))
        rows.append((next_id, next_id if rng.random() < 0.3 else 0, rng.choice((1, 2))))
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "CREATE TABLE items (id INT PRIMARY KEY, deleted INT NOT NULL, "
                "cell_id INT, payload VARCHAR(255), KEY (cell_id))"
            )
        )
        conn.execute(
            sa.text("INSERT INTO items VALUES (:i, :d, :c, REPEAT('x', 200))"),
            [{"i": i, "d": d, "c": c} for i, d, c in rows],
        )
    try:
        yield engine, rows
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {DATABASE}"))
        admin.dispose()


def covered(ranges: list[IdRange], ids: list[int]) -> list[list[int]]:
    """The ids each range holds; every id must fall in exactly one."""
    for i in ids:
        assert sum(r.contains(i) for r in ranges) == 1, i
    return [[i for i in ids if r.contains(i)] for r in ranges]


def test_ranges_cover_every_id_once_in_steps_of_size(items: tuple) -> None:
    engine, rows = items
    ids = [r[0] for r in rows]
    ranges = plan_ranges(engine, RangeSupport("items"), 0, 300, 64)
    assert ranges[0].lo == 0 and ranges[-1].hi is None
    assert all(a.hi == b.lo for a, b in itertools.pairwise(ranges))
    sizes = [len(part) for part in covered(ranges, ids)]
    assert sizes == [300, 300, 300, 100]
    assert ranges[-1].contains(ids[-1] + 1_000_000), "rows created after the plan are covered"


def test_small_cell_is_one_open_range(items: tuple) -> None:
    engine, _rows = items
    assert plan_ranges(engine, RangeSupport("items"), 0, ROWS, 64) == [IdRange()]
    assert plan_ranges(engine, RangeSupport("items"), 0, ROWS + 500, 64) == [IdRange()]
    assert plan_ranges(engine, RangeSupport("items"), 0, 0, 64) == [IdRange()]
    assert len(plan_ranges(engine, RangeSupport("items"), 0, ROWS - 1, 64)) == 2


def test_filters_plan_on_the_rows_the_task_reads(items: tuple) -> None:
    engine, rows = items
    live = [i for i, d, _c in rows if d == 0]
    ranges = plan_ranges(engine, RangeSupport("items", live_only=True), 0, 200, 64)
    sizes = [len(part) for part in covered(ranges, live)]
    assert sizes[:-1] == [200] * (len(sizes) - 1) and 0 < sizes[-1] <= 200
    in_cell2 = [i for i, _d, c in rows if c == 2]
    support = RangeSupport("items", database="api", cell_column="cell_id")
    ranges = plan_ranges(engine, support, 2, 100, 64)
    sizes = [len(part) for part in covered(ranges, in_cell2)]
    assert sizes[:-1] == [100] * (len(sizes) - 1) and 0 < sizes[-1] <= 100


@pytest.mark.parametrize("cap", [2, 5, 8, 17])
def test_a_cell_needing_more_ranges_than_the_cap_gets_bigger_ones(items: tuple, cap: int) -> None:
    engine, rows = items
    ids = [r[0] for r in rows]
    ranges = plan_ranges(engine, RangeSupport("items"), 0, 10, cap)
    assert 1 < len(ranges) <= cap
    sizes = [len(part) for part in covered(ranges, ids)]
    assert len(set(sizes[:-1])) == 1, sizes  # equal steps (a power of two times 10)
    assert sizes[-1] <= sizes[0]


def test_the_plan_of_a_whole_run_stays_far_below_max_map_length() -> None:
    assert MAX_UNITS <= 1024 // 2
    for cells in (1, 2, 10, 30, 100, 512):
        assert cells * ranges_per_cell(cells) <= MAX_UNITS
    assert ranges_per_cell(600) == 1, "more cells than units: one unit per cell, as before"


def test_the_planner_reads_ids_only_in_index_steps(items: tuple) -> None:
    engine, _rows = items
    statements: list[tuple[str, dict]] = []

    def seen(_conn, _cursor, statement, parameters, *_args) -> None:  # type: ignore[no-untyped-def]
        statements.append((statement, parameters))

    sa.event.listen(engine, "before_cursor_execute", seen)
    try:
        ranges = plan_ranges(engine, RangeSupport("items"), 0, 100, 64)
    finally:
        sa.event.remove(engine, "before_cursor_execute", seen)
    planning = [(s, p) for s, p in statements if " items" in s]
    assert len(planning) == len(ranges), statements  # one step per boundary, one to end
    for sql, _params in planning:
        assert sql.split("FROM")[0].strip() == "SELECT items.id", sql
        assert "ORDER BY items.id" in sql and "LIMIT" in sql, sql
    with engine.connect() as conn:
        sql, params = planning[1]
        plan = conn.exec_driver_sql("EXPLAIN " + sql, params).mappings().first()
    assert plan is not None and plan["key"] == "PRIMARY", plan
