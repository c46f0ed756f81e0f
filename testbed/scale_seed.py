"""Synthetic clouds at CERN size (300,000 instances over 30 cells) in minutes.

`up` migrates every cell with `nova-manage db sync`, which costs a Nova process per
cell; here only cell1 is migrated by Nova, and cell0 and every other cell get its
schema cloned table by table from `SHOW CREATE TABLE` (foreign keys kept). The
rows are the bed's own seed (testbed/seed: executemany multi-row INSERTs,
allocations in bulk into Placement's database). Then `inject` breaks 2 % of the
objects each writing task repairs, with bulk SQL where the bed's drift would send
one request per object.
"""

from __future__ import annotations

import random
import threading
import uuid as uuidlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from testbed.backends import copy_database
from testbed.bed import Build, up
from testbed.db import connect, insert_rows
from testbed.drift import (
    missing_aggregates,
    null_cell_mappings,
    round_robin,
    unmapped_hosts,
    unmapped_instances,
    wrong_cell_mappings,
)
from testbed.errors import TestBedError
from testbed.state import TestBed

TEMPLATE = "cell1"
INSTANCES_PER_HOST = 250
DRIFT_SHARE = 0.02
CHUNK = 1000
Change = dict[str, Any]


class ScaleBuild(Build):
    """A Build whose cells (but one) get a clone of the migrated cell1's schema."""

    def __init__(self, directory: Path, backend: str, names: list[str]) -> None:
        if backend != "mariadb":
            raise TestBedError("the scale seeder clones schemas on MariaDB only: use mariadb")
        self.template_done = threading.Event()
        super().__init__(directory, backend, names)

    def cell_chain(self, name: str) -> None:
        if name == TEMPLATE:
            try:
                super().cell_chain(name)
            finally:
                self.template_done.set()
            return
        self.template_done.wait()
        if self.steps.errors:
            return
        copy_database(_database(self.cell_urls[TEMPLATE]), _database(self.cell_urls[name]))
        self.mark(f"clone_{name}")


def _database(url: str) -> str:
    return str(sa.engine.make_url(url).database)


def hosts_for(instances: int, cells: int) -> int:
    """Compute hosts per cell: about INSTANCES_PER_HOST instances each, at least 2."""
    return max(2, instances // cells // INSTANCES_PER_HOST)


def scale_up(
    directory: str | Path, instances: int, cells: int, hosts_per_cell: int | None = None
) -> TestBed:
    """A MariaDB bed of `instances` instances spread evenly over `cells` cells."""
    if instances < cells or cells < 1:
        raise TestBedError(f"need at least one instance per cell: {instances} over {cells}")
    return up(
        directory,
        backend="mariadb",
        cells=cells,
        hosts_per_cell=hosts_per_cell or hosts_for(instances, cells),
        instances_per_cell=instances // cells,
        build_class=ScaleBuild,
    )


# --------------------------------------------------------------------------- drift


def _live_allocated(bed: TestBed) -> list[list[tuple[str, str]]]:
    """Per compute cell: (cell, uuid) of live instances on a host, by id."""
    groups = []
    for cell in bed.compute_cells:
        with connect(cell.url) as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT uuid FROM instances WHERE deleted = 0 AND host IS NOT NULL ORDER BY id"
                )
            ).all()
        groups.append([(cell.name, r.uuid) for r in rows])
    return groups


def _expanding(sql: str) -> sa.TextClause:
    return sa.text(sql).bindparams(sa.bindparam("u", expanding=True))


def drop_allocations(bed: TestBed, count: int, skip: set[str]) -> list[Change]:
    """What DELETE /allocations/{uuid} does, for `count` live instances at once, in SQL."""
    groups = [[i for i in g if i[1] not in skip] for g in _live_allocated(bed)]
    # Every other instance from the back of each cell: never the ones unmapped first.
    picked = round_robin([g[::-1][::2] for g in groups], count)
    uuids = [u for _, u in picked]
    with connect(bed.placement_db_url) as conn:
        for start in range(0, len(uuids), CHUNK):
            chunk = uuids[start : start + CHUNK]
            conn.execute(
                _expanding(
                    "UPDATE resource_providers SET generation = generation + 1 WHERE id IN "
                    "(SELECT resource_provider_id FROM allocations WHERE consumer_id IN :u)"
                ),
                {"u": chunk},
            )
            conn.execute(
                _expanding("DELETE FROM allocations WHERE consumer_id IN :u"), {"u": chunk}
            )
            conn.execute(_expanding("DELETE FROM consumers WHERE uuid IN :u"), {"u": chunk})
    return [{"scenario": "missing_allocations", "cell": c, "instance_uuid": u} for c, u in picked]


def copy_orphans(bed: TestBed, count: int, seed: int) -> list[Change]:
    """Copies of `count` consumers' allocations under uuids no instance has, in SQL."""
    rng = random.Random(f"{seed}:scale-orphans")  # noqa: S311 - test data
    with connect(bed.placement_db_url) as conn:
        sources = [
            r[0]
            for r in conn.execute(
                sa.text("SELECT uuid FROM consumers ORDER BY id LIMIT :n"), {"n": count}
            )
        ]
        new = {u: str(uuidlib.UUID(int=rng.getrandbits(128), version=4)) for u in sources}
        consumers = [
            {**dict(r), "uuid": new[r["uuid"]]}
            for r in _rows(conn, "SELECT * FROM consumers WHERE uuid IN :u", sources)
        ]
        allocations = [
            {**dict(r), "consumer_id": new[r["consumer_id"]]}
            for r in _rows(conn, "SELECT * FROM allocations WHERE consumer_id IN :u", sources)
        ]
        for row in (*consumers, *allocations):
            row.pop("id")
        insert_rows(conn, "consumers", consumers)
        insert_rows(conn, "allocations", allocations)
    return [{"scenario": "orphan_allocations", "consumer_uuid": u} for u in new.values()]


def _rows(conn: sa.Connection, sql: str, uuids: Sequence[str]) -> list[sa.RowMapping]:
    rows: list[sa.RowMapping] = []
    for start in range(0, len(uuids), CHUNK):
        chunk = list(uuids[start : start + CHUNK])
        rows += conn.execute(_expanding(sql), {"u": chunk}).mappings().all()
    return rows


def analyze(bed: TestBed) -> None:
    """Fresh index statistics on every table, as a cloud that grew row by row has.

    Right after a bulk load InnoDB's statistics are stale: Placement's listing of one
    provider's allocations took 142 ms at 30k instances, 20 ms after ANALYZE TABLE.
    """
    for url in (bed.api_url, bed.placement_db_url, *(c.url for c in bed.cells)):
        with connect(url) as conn:
            names = conn.execute(
                sa.text(
                    "SELECT table_name FROM information_schema.tables "
                    "WHERE table_schema = DATABASE() AND table_type = 'BASE TABLE'"
                )
            ).scalars()
            conn.exec_driver_sql("ANALYZE TABLE " + ", ".join(f"`{n}`" for n in names)).all()


def inject(bed: TestBed, share: float = DRIFT_SHARE) -> dict[str, list[Change]]:
    """`share` of the instances (or hosts) drifted for every writing task; what changed.

    Ends with `analyze`, so the tasks meet the query plans of a live database.
    """
    instances = sum(
        int(bed.counts[c.name]["instances"]) - int(bed.counts[c.name]["deleted"])
        for c in bed.compute_cells
    )
    hosts = sum(int(bed.counts[c.name]["hosts"]) for c in bed.compute_cells)
    per_instance = max(1, round(instances * share))
    per_host = max(1, round(hosts * share))
    changes: dict[str, list[Change]] = {}
    changes["unmapped_instances"] = unmapped_instances(bed, per_instance)
    changes["null_cell_mappings"] = null_cell_mappings(bed, per_instance // 2)
    changes["wrong_cell_mappings"] = wrong_cell_mappings(bed, per_instance - per_instance // 2)
    skip = {c["instance_uuid"] for c in changes["unmapped_instances"]}
    changes["missing_allocations"] = drop_allocations(bed, per_instance, skip)
    changes["orphan_allocations"] = copy_orphans(bed, per_instance, bed.seed)
    changes["unmapped_hosts"] = unmapped_hosts(bed, per_host)
    changes["missing_aggregates"] = missing_aggregates(bed, per_host)
    analyze(bed)
    return changes
