"""Write a planned cloud into a bed: per cell, its cell DB, API DB and Placement at once."""

from __future__ import annotations

import datetime as dt
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from testbed.db import connect, insert_rows
from testbed.placement import PlacementAPI
from testbed.seed.allocations import (
    ALLOCATION_BATCH,
    API_ALLOCATIONS_MAX,
    bulk_allocations,
    create_providers,
    post_allocations,
)
from testbed.seed.capacity import host_capacity, inventories
from testbed.seed.formats import request_spec
from testbed.seed.hosts import compute_node_rows, host_usage, service_rows
from testbed.seed.instances import CellRows, Ids, instance_rows
from testbed.seed.model import INSTANCE_CHUNK, Host, Instance, Plan, new_uuid, rng_for
from testbed.state import Cell, TestBed
from testbed.threads import in_parallel

Shapes = dict[str, dict[str, Any]]


def seed(bed: TestBed, plan: Plan, formats: dict[str, Any]) -> dict[str, Any]:
    """Write the planned cloud into the bed (flavors and aggregates already exist)."""
    cells = [c.name for c in bed.compute_cells]
    capacity = host_capacity(plan)
    shapes = {s["key"]: s for s in formats["shapes"]}
    flavor_ids = {k: int(v["id"]) for k, v in formats["flavors"].items()}
    cell_by_name = {c.name: c for c in bed.cells}
    counts: dict[str, Any] = {"capacity": capacity}
    cell_ids = insert_host_mappings(bed, plan, [cell_by_name[name] for name in cells])
    inventory = inventories(capacity)
    for cell_name in ["cell0", *cells]:
        cell = cell_by_name[cell_name]
        hosts = plan.hosts[cell_name]
        instances = plan.instances[cell_name]
        live = [i for i in instances if i.host and not i.deleted]
        seconds: dict[str, float] = {}
        # Three independent writers: the cell DB, the API DB and Placement.
        results = in_parallel(
            timed(
                seconds,
                "cell_db",
                seed_cell,
                cell,
                CellSeed(hosts, instances, shapes, flavor_ids, formats, capacity, plan.anchor),
                bed.seed,
            ),
            timed(seconds, "api_db", seed_api_rows, bed, cell_ids[cell.uuid], instances, shapes),
            timed(seconds, "placement", seed_placement, bed, hosts, live, inventory, shapes),
        )
        counts[cell_name] = {
            "hosts": len(hosts),
            "instances": len(instances),
            "deleted": sum(1 for i in instances if i.deleted),
            "allocations": results[2],
            "seconds": seconds,
        }
    return counts


def insert_host_mappings(bed: TestBed, plan: Plan, cells: list[Cell]) -> dict[str, int]:
    """Map every planned host to its cell in the API DB; {cell uuid: cell_mappings id}."""
    with connect(bed.api_url) as api_conn:
        cell_ids = {
            row.uuid: row.id
            for row in api_conn.execute(sa.text("SELECT id, uuid FROM cell_mappings"))
        }
        for cell in cells:
            insert_rows(
                api_conn,
                "host_mappings",
                [
                    {
                        "cell_id": cell_ids[cell.uuid],
                        "host": h.name,
                        "created_at": plan.anchor - dt.timedelta(days=420),
                    }
                    for h in plan.hosts[cell.name]
                ],
            )
    return cell_ids


def timed(
    seconds: dict[str, float], part: str, fn: Callable[..., Any], *args: Any
) -> Callable[[], Any]:
    """A job that runs fn(*args) and records its wall-clock seconds under `part`."""

    def run() -> Any:
        started = time.monotonic()
        try:
            return fn(*args)
        finally:
            seconds[part] = round(time.monotonic() - started, 2)

    return run


def seed_placement(
    bed: TestBed,
    hosts: list[Host],
    live: list[Instance],
    inventory: dict[str, dict[str, Any]],
    shapes: Shapes,
) -> int:
    """Resource providers of the cell's hosts and its live instances' allocations."""
    if not bed.placement_url:
        return 0
    api = PlacementAPI(bed.placement_url)
    try:
        create_providers(api, hosts, inventory)
        through_api = live if len(live) <= API_ALLOCATIONS_MAX else live[:ALLOCATION_BATCH]
        allocated = post_allocations(api, through_api, shapes)
    finally:
        api.close()
    return allocated + bulk_allocations(bed.placement_db_url, live[len(through_api) :], shapes)


@dataclass(frozen=True)
class CellSeed:
    """What one cell's database gets: its hosts and instances, and how to write them."""

    hosts: list[Host]
    instances: list[Instance]
    shapes: Shapes
    flavor_ids: dict[str, int]
    formats: dict[str, Any]
    capacity: dict[str, int]
    anchor: dt.datetime


def seed_cell(cell: Cell, what: CellSeed, seed_value: int) -> None:
    """Hosts and instances of one cell, in the cell database."""
    rng = rng_for(f"{seed_value}:{cell.name}:rows")
    ids = Ids()
    with connect(cell.url) as conn:
        if what.hosts:
            insert_hosts(conn, cell, what, rng)
        for start in range(0, len(what.instances), INSTANCE_CHUNK):
            rows = instance_rows(
                what.instances[start : start + INSTANCE_CHUNK],
                what.shapes,
                what.flavor_ids,
                ids,
                rng,
            )
            for table in CellRows.TABLES:
                insert_rows(conn, table, rows.rows[table])


def insert_hosts(conn: sa.Connection, cell: Cell, what: CellSeed, rng: random.Random) -> None:
    """The cell's nova-compute services and compute nodes, and its nova-conductor."""
    version = what.formats["service_version"]
    conductor = {
        **service_rows(what.hosts[:1], version, what.anchor)[0],
        "id": len(what.hosts) + 1,
        "uuid": new_uuid(rng),
        "host": f"{cell.name}-conductor",
        "binary": "nova-conductor",
        "topic": "conductor",
    }
    insert_rows(conn, "services", [*service_rows(what.hosts, version, what.anchor), conductor])
    insert_rows(
        conn,
        "compute_nodes",
        compute_node_rows(
            what.hosts,
            what.capacity,
            what.formats["compute_node"],
            host_usage(what.instances),
            what.anchor,
        ),
    )


def seed_api_rows(bed: TestBed, cell_id: int, instances: list[Instance], shapes: Shapes) -> None:
    """Instance mappings and request specs of one cell's instances, in the API database."""
    with connect(bed.api_url) as api_conn:
        for start in range(0, len(instances), INSTANCE_CHUNK):
            chunk = instances[start : start + INSTANCE_CHUNK]
            insert_rows(api_conn, "instance_mappings", instance_mapping_rows(chunk, cell_id))
            insert_rows(
                api_conn,
                "request_specs",
                [
                    {
                        "instance_uuid": i.uuid,
                        "spec": request_spec(shapes[i.shape], i),
                        "created_at": i.created_at,
                        "updated_at": None,
                    }
                    for i in chunk
                ],
            )


def instance_mapping_rows(chunk: list[Instance], cell_id: int) -> list[dict[str, Any]]:
    """Instance mappings to `cell_id`; deleted instances' mappings queued for delete."""
    return [
        {
            "instance_uuid": i.uuid,
            "cell_id": cell_id,
            "project_id": i.project_id,
            "user_id": i.user_id,
            "queued_for_delete": i.deleted,
            "created_at": i.created_at,
            "updated_at": i.deleted_at,
        }
        for i in chunk
    ]
