"""The cloud in Placement: one provider per host, allocations of live instances.

Placement spends ~10 ms per consumer (8-10 statements each), i.e. ~15 min for
100,000 instances; big seeds send the first batch through the API (which
creates the consumer type, projects and users) and write the rest straight into
Placement's database (`bulk_allocations`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from testbed.db import connect, insert_rows
from testbed.placement import PlacementAPI
from testbed.seed.model import INSTANCE_CHUNK, TRAITS, Host, Instance, naive

ALLOCATION_BATCH = 500
API_ALLOCATIONS_MAX = 2000  # consumers per cell written through POST /allocations

Shapes = dict[str, dict[str, Any]]


def create_providers(
    api: PlacementAPI, hosts: Iterable[Host], inventory: dict[str, dict[str, Any]]
) -> None:
    """One compute node provider per host, as nova-compute's report client makes it."""
    for host in hosts:
        api.post("/resource_providers", {"uuid": host.uuid, "name": host.name})
        generation = 0
        generation = api.put(
            f"/resource_providers/{host.uuid}/inventories",
            {"resource_provider_generation": generation, "inventories": inventory},
        )["resource_provider_generation"]
        generation = api.put(
            f"/resource_providers/{host.uuid}/traits",
            {"resource_provider_generation": generation, "traits": TRAITS},
        )["resource_provider_generation"]
        if host.aggregates:
            api.put(
                f"/resource_providers/{host.uuid}/aggregates",
                {"resource_provider_generation": generation, "aggregates": host.aggregates},
            )


def allocation_body(inst: Instance, resources: dict[str, int]) -> dict[str, Any]:
    """One consumer's entry of a POST /allocations body."""
    assert inst.host is not None
    return {
        "allocations": {inst.host.uuid: {"resources": resources}},
        "project_id": inst.project_id,
        "user_id": inst.user_id,
        "consumer_generation": None,
        "consumer_type": "INSTANCE",
    }


def post_allocations(api: PlacementAPI, live: Sequence[Instance], shapes: Shapes) -> int:
    """Allocations of live, scheduled instances, many consumers per POST /allocations."""
    for start in range(0, len(live), ALLOCATION_BATCH):
        body = {
            inst.uuid: allocation_body(inst, shapes[inst.shape]["resources"])
            for inst in live[start : start + ALLOCATION_BATCH]
        }
        api.post("/allocations", body)
    return len(live)


def bulk_allocations(placement_db: str, live: Sequence[Instance], shapes: Shapes) -> int:
    """The rows POST /allocations would write, inserted in bulk into Placement's database.

    Consumers at generation 1, one allocation row per resource class, and every
    provider's generation bumped once, as one more POST would.
    """
    if not live:
        return 0
    now = naive(dt.datetime.now(dt.timezone.utc))
    with connect(placement_db) as conn:
        providers = id_map(conn, "resource_providers", "uuid")
        classes = id_map(conn, "resource_classes", "name")
        owners = ConsumerOwners(
            consumer_type=id_map(conn, "consumer_types", "name")["INSTANCE"],
            projects=ensure_external_ids(conn, "projects", {i.project_id for i in live}, now),
            users=ensure_external_ids(conn, "users", {i.user_id for i in live}, now),
        )
        for start in range(0, len(live), INSTANCE_CHUNK):
            chunk = live[start : start + INSTANCE_CHUNK]
            insert_rows(conn, "consumers", consumer_rows(chunk, owners, now))
            insert_rows(
                conn, "allocations", allocation_rows(chunk, providers, classes, shapes, now)
            )
        touched = sorted({providers[i.host.uuid] for i in live if i.host is not None})
        conn.execute(
            sa.text(
                "UPDATE resource_providers SET generation = generation + 1 WHERE id IN :ids"
            ).bindparams(sa.bindparam("ids", expanding=True)),
            {"ids": touched},
        )
    return len(live)


@dataclass(frozen=True)
class ConsumerOwners:
    """Placement's internal ids of the consumer type, projects and users consumers name."""

    consumer_type: int
    projects: dict[str, int]
    users: dict[str, int]


def id_map(conn: sa.Connection, table: str, column: str) -> dict[str, int]:
    """{column value: id} of every row of `table`."""
    rows = conn.execute(sa.text(f"SELECT id, {column} FROM {table}")).all()
    return {str(r[1]): int(r[0]) for r in rows}


def ensure_external_ids(
    conn: sa.Connection, table: str, names: set[str], now: dt.datetime
) -> dict[str, int]:
    """Add the external ids `table` (projects, users) lacks; {external id: id} of all."""
    missing = names - set(id_map(conn, table, "external_id"))
    insert_rows(conn, table, [{"external_id": n, "created_at": now} for n in sorted(missing)])
    return id_map(conn, table, "external_id")


def consumer_rows(
    chunk: Sequence[Instance], owners: ConsumerOwners, now: dt.datetime
) -> list[dict[str, Any]]:
    """One INSTANCE consumer at generation 1 per instance."""
    return [
        {
            "uuid": i.uuid,
            "project_id": owners.projects[i.project_id],
            "user_id": owners.users[i.user_id],
            "generation": 1,
            "consumer_type_id": owners.consumer_type,
            "created_at": now,
            "updated_at": now,
        }
        for i in chunk
    ]


def allocation_rows(
    chunk: Sequence[Instance],
    providers: dict[str, int],
    classes: dict[str, int],
    shapes: Shapes,
    now: dt.datetime,
) -> list[dict[str, Any]]:
    """One allocation row per resource class of every scheduled instance of the chunk."""
    return [
        {
            "resource_provider_id": providers[i.host.uuid],
            "consumer_id": i.uuid,
            "resource_class_id": classes[rc],
            "used": used,
            "created_at": now,
        }
        for i in chunk
        if i.host is not None
        for rc, used in shapes[i.shape]["resources"].items()
    ]
