"""Where the database faults of testbed.db_faults hit each DB-writing task.

`CASES[task]` says how to give the task work on a bed (`prepare`: drift it
will heal), how to run it (`params`), and per cell which rows its write
batch waits on and holds (`target(bed, cell, kind)`):

- for the lock kinds, rows only that cell's first write batch needs, so that
  cell alone waits and nothing of it is written before (for map_instances and
  discover_hosts: the cell's `cell_mappings` row, which the foreign key check
  of every mapping insert share-locks; for archive and purge: the rows of the
  first table they write);
- for "deadlock" and "kill", `hold` is a row the batch locks late and `then`
  one it locked earlier in the same transaction (a lower id of an UPDATE or
  DELETE by id, a child row archived before its instance, an instance mapping
  inserted before one whose unique-key gap is held).

The fault matrix and tests/tasks/test_db_faults.py both read these:

    case = CASES["map_instances"]
    case.prepare(bed)
    with inject("deadlock", case.target(bed, "cell1", "deadlock")) as fault:
        ...run case.task in heal mode with case.params...
    fault.deadlocks, fault.victim, fault.killed, fault.waiters   # what happened
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from nova_audit_ops.nova.shadow import purgeable, reflect_plan
from testbed.db import engine, query
from testbed.db_faults import Rows, Target
from testbed.drift import drift
from testbed.errors import TestBedError
from testbed.manage import nova_manage
from testbed.state import TestBed

FUTURE = "2100-01-01"  # archive and purge every soft-deleted row
LOCK_KINDS = ("lock_released", "lock_held")


@dataclass(frozen=True)
class Case:
    """One task under database faults: its drift, its run params, its target rows."""

    task: str
    prepare: Callable[[TestBed], None]
    lock_rows: Callable[[TestBed, str], Rows]
    strike: Callable[[TestBed, str], Target]
    params: dict[str, Any] = field(default_factory=dict)

    def target(self, bed: TestBed, cell: str, kind: str) -> Target:
        """The rows fault `kind` locks (and requests) to hit this task's batch in `cell`."""
        if kind in LOCK_KINDS:
            return Target(self.lock_rows(bed, cell))
        return self.strike(bed, cell)


def _ids(ids: Sequence[int]) -> str:
    return ", ".join(str(int(i)) for i in ids)


def _by_id(url: str, table: str, ids: Sequence[int]) -> Rows:
    return Rows(url, table, f"id IN ({_ids(ids)})")


def _late_and_early(url: str, table: str, ids: Sequence[int], what: str) -> Target:
    """A statement that locks `ids` in id order waits on the last while holding the first."""
    if len(ids) < 2:
        raise TestBedError(f"{what}: a deadlock needs two rows in one batch, found {len(ids)}")
    ordered = sorted(ids)
    return Target(_by_id(url, table, ordered[-1:]), _by_id(url, table, ordered[:1]))


def _cell_mapping(bed: TestBed, cell: str) -> Rows:
    """The cell's row by primary key (by `name`, unindexed, every row would be locked)."""
    (row,) = query(bed.api_url, "SELECT id FROM cell_mappings WHERE name = :n", n=cell)
    return _by_id(bed.api_url, "cell_mappings", [row.id])


# map_instances: per cell one multi-row INSERT into instance_mappings.


def _unmapped(bed: TestBed, cell: str) -> list[str]:
    """The cell's instances without a mapping, in the order map_instances inserts them."""
    mapped = {
        r.instance_uuid for r in query(bed.api_url, "SELECT instance_uuid FROM instance_mappings")
    }
    rows = query(bed.cell(cell).url, "SELECT uuid FROM instances ORDER BY id")
    return [r.uuid for r in rows if r.uuid not in mapped]


def _map_strike(bed: TestBed, cell: str) -> Target:
    """Hold the unique-key gap of a later mapping; then ask for the first one inserted."""
    existing = sorted(
        r.instance_uuid for r in query(bed.api_url, "SELECT instance_uuid FROM instance_mappings")
    )
    missing = _unmapped(bed, cell)
    everyone = [u for c in bed.compute_cells for u in _unmapped(bed, c.name)]
    gap = {u: bisect.bisect(existing, u) for u in everyone}
    alone = [u for u in missing[1:] if [gap[v] for v in everyone].count(gap[u]) == 1]
    if not missing or not alone:
        raise TestBedError(f"map_instances in {cell}: no mapping whose gap is its own")
    rows = "instance_uuid = :u"
    return Target(
        Rows(bed.api_url, "instance_mappings", rows, {"u": alone[0]}),
        Rows(bed.api_url, "instance_mappings", rows, {"u": missing[0]}),
    )


# discover_hosts: host_mappings INSERT (API), then UPDATE compute_nodes by id (cell).


def _unflagged_nodes(bed: TestBed, cell: str) -> list[int]:
    rows = query(
        bed.cell(cell).url, "SELECT id FROM compute_nodes WHERE mapped = 0 AND deleted = 0"
    )
    return [r.id for r in rows]


def _discover_strike(bed: TestBed, cell: str) -> Target:
    return _late_and_early(
        bed.cell(cell).url, "compute_nodes", _unflagged_nodes(bed, cell), "discover_hosts"
    )


# heal_instance_mappings: per batch and target cell, one UPDATE of mappings by id.


def _wrong_mappings(bed: TestBed, cell: str) -> list[int]:
    """Ids of the mappings that say `cell` for an instance that lives in another cell."""
    here = {r.uuid for r in query(bed.cell(cell).url, "SELECT uuid FROM instances")}
    rows = query(
        bed.api_url,
        "SELECT m.id, m.instance_uuid FROM instance_mappings m "
        "JOIN cell_mappings c ON c.id = m.cell_id WHERE c.name = :n",
        n=cell,
    )
    return [r.id for r in rows if r.instance_uuid not in here]


def _heal_lock(bed: TestBed, cell: str) -> Rows:
    return _by_id(bed.api_url, "instance_mappings", _wrong_mappings(bed, cell))


def _heal_strike(bed: TestBed, cell: str) -> Target:
    wrong = _wrong_mappings(bed, cell)
    return _late_and_early(bed.api_url, "instance_mappings", wrong, "heal_instance_mappings")


# archive_deleted_rows and purge: per table (children first) batches by id. The
# lock is on the first table the task writes, so nothing of the cell is done
# before it; INSERT ... SELECT and DELETE lock a batch's rows in id order.


def _archived_first(bed: TestBed, cell: str) -> tuple[str, list[int]]:
    """The first table archive_deleted_rows moves rows of in `cell`, and their ids."""
    url = bed.cell(cell).url
    with engine(url) as eng:
        tables = reflect_plan(eng).tables
    for table in tables:
        if table.name == "task_log" or not {"id", "deleted", "deleted_at"} <= set(table.c.keys()):
            continue
        sql = f"SELECT id FROM `{table.name}` WHERE deleted != 0 AND deleted_at < :cut"
        ids = [r.id for r in query(url, sql, cut=FUTURE)]
        if ids:
            return table.name, ids
    raise TestBedError(f"archive_deleted_rows: {cell} has no soft-deleted row")


def _purged_first(bed: TestBed, cell: str) -> tuple[str, list[int]]:
    """The first shadow table purge deletes rows of in `cell`, and their ids."""
    url = bed.cell(cell).url
    with engine(url) as eng:
        tables = purgeable(eng)
    for table, column in reversed(tables):  # purge's order: children before parents
        if column is None or "id" not in table.c:
            continue
        ids = [
            r.id
            for r in query(
                url, f"SELECT id FROM `{table.name}` WHERE `{column.name}` < :cut", cut=FUTURE
            )
        ]
        if ids:
            return table.name, ids
    raise TestBedError(f"purge: {cell} has no shadow row to purge")


def _first_rows(
    first: Callable[[TestBed, str], tuple[str, list[int]]],
) -> Callable[[TestBed, str], Rows]:
    def lock_rows(bed: TestBed, cell: str) -> Rows:
        name, ids = first(bed, cell)
        return _by_id(bed.cell(cell).url, name, ids)

    return lock_rows


def _first_strike(
    first: Callable[[TestBed, str], tuple[str, list[int]]], task: str
) -> Callable[[TestBed, str], Target]:
    def strike(bed: TestBed, cell: str) -> Target:
        name, ids = first(bed, cell)
        return _late_and_early(bed.cell(cell).url, name, ids, f"{task} {name}")

    return strike


def _archive_first(bed: TestBed) -> None:
    """Give purge something to delete: Nova's own archive of every soft-deleted row."""
    done = nova_manage(
        bed, "db", "archive_deleted_rows", "--all-cells", "--until-complete", "--before", FUTURE
    )
    if done.returncode not in (0, 1):  # 1: rows were archived
        raise TestBedError(f"nova-manage db archive_deleted_rows failed: {done.stderr[-500:]}")


def _drifted(scenario: str, count: int) -> Callable[[TestBed], None]:
    def prepare(bed: TestBed) -> None:
        drift(bed, scenario, count)

    return prepare


def _as_seeded(bed: TestBed) -> None:
    """The seeded bed already has soft-deleted instances in every cell."""


LATER = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=1)  # past every grace period

CASES: dict[str, Case] = {
    case.task: case
    for case in (
        Case(
            "map_instances",
            _drifted("unmapped_instances", 6),
            _cell_mapping,
            _map_strike,
        ),
        Case(
            "discover_hosts",
            _drifted("unmapped_hosts", 4),
            _cell_mapping,
            _discover_strike,
        ),
        Case(
            "heal_instance_mappings",
            _drifted("wrong_cell_mappings", 4),
            _heal_lock,
            _heal_strike,
            {"reference_time": LATER},
        ),
        Case(
            "archive_deleted_rows",
            _as_seeded,
            _first_rows(_archived_first),
            _first_strike(_archived_first, "archive_deleted_rows"),
            {"before": FUTURE},
        ),
        Case(
            "purge",
            _archive_first,
            _first_rows(_purged_first),
            _first_strike(_purged_first, "purge"),
            {"before": FUTURE},
        ),
    )
}
