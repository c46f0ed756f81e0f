"""Plan the synthetic cloud: projects, hosts, instances and aggregates, before any row."""

from __future__ import annotations

import datetime as dt
import random
import uuid
from collections.abc import Sequence
from typing import Any

from testbed.seed.model import (
    BFV,
    CELL0_INSTANCES,
    DELETED_EVERY,
    FLAVORS,
    IMAGES,
    VOLUME_BACKED_SHARE,
    Flavor,
    Host,
    Instance,
    Plan,
    naive,
    new_uuid,
    rng_for,
)

Projects = list[tuple[str, list[str]]]


def make_projects(rng: random.Random) -> Projects:
    """Four projects of two users each."""
    return [
        (
            uuid.UUID(int=rng.getrandbits(128)).hex,
            [uuid.UUID(int=rng.getrandbits(128)).hex for _ in range(2)],
        )
        for _ in range(4)
    ]


def make_hosts(cell: str, count: int, rng: random.Random, first: int = 1) -> list[Host]:
    """`count` compute hosts of `cell`, numbered from `first`."""
    return [
        Host(
            cell=cell,
            name=f"{cell}-cmp{first + i:03d}",
            uuid=new_uuid(rng),
            service_uuid=new_uuid(rng),
            service_id=first + i,
            node_id=first + i,
        )
        for i in range(count)
    ]


def build_plan(
    cells: Sequence[str],
    hosts_per_cell: int,
    instances_per_cell: int,
    seed: int,
    anchor: dt.datetime,
) -> Plan:
    """The whole cloud for `seed`, its timestamps counting back from `anchor`."""
    projects = make_projects(rng_for(f"{seed}:projects"))
    hosts: dict[str, list[Host]] = {}
    instances: dict[str, list[Instance]] = {}
    for cell in ["cell0", *cells]:
        rng = rng_for(f"{seed}:{cell}")
        is_cell0 = cell == "cell0"
        hosts[cell] = [] if is_cell0 else make_hosts(cell, hosts_per_cell, rng)
        count = CELL0_INSTANCES if is_cell0 else instances_per_cell
        instances[cell] = plan_instances(cell, count, hosts[cell], projects, rng, anchor)
    aggregates = plan_aggregates(cells, hosts, rng_for(f"{seed}:aggregates"))
    return Plan(hosts, instances, aggregates, projects, naive(anchor))


def plan_instances(
    cell: str,
    count: int,
    hosts: list[Host],
    projects: Projects,
    rng: random.Random,
    anchor: dt.datetime,
) -> list[Instance]:
    """A cell's instances, ids numbered in (created_at, uuid) order; none scheduled in cell0."""
    is_cell0 = cell == "cell0"
    weights = [f.weight for f in FLAVORS]
    planned = []
    covered = 0
    for i in range(count):
        flavor = rng.choices(FLAVORS, weights)[0]
        image = BFV if rng.random() < VOLUME_BACKED_SHARE else rng.choice(IMAGES)[0]
        project_id, users = rng.choice(projects)
        deleted = not is_cell0 and i % DELETED_EVERY == DELETED_EVERY - 1
        if not is_cell0 and not deleted and covered < len(FLAVORS):
            # Even a small cloud has every flavor live, booted from images and volumes.
            flavor, image = covering_shape(covered)
            covered += 1
        created_at, deleted_at = lifetime(deleted, rng, anchor)
        planned.append(
            Instance(
                cell=cell,
                uuid=new_uuid(rng),
                flavor=flavor,
                image=image,
                project_id=project_id,
                user_id=rng.choice(users),
                host=None if is_cell0 else hosts[i % len(hosts)],
                created_at=naive(created_at),
                deleted_at=naive(deleted_at) if deleted_at else None,
                index=i,
            )
        )
    planned.sort(key=lambda inst: (inst.created_at, inst.uuid))
    for number, inst in enumerate(planned, start=1):
        inst.id = number
    return planned


def covering_shape(covered: int) -> tuple[Flavor, str]:
    """The flavor and image of the `covered`-th live instance that makes every flavor live."""
    image = BFV if covered % 2 else IMAGES[covered % 4 // 2][0]
    return FLAVORS[covered], image


def lifetime(
    deleted: bool, rng: random.Random, anchor: dt.datetime
) -> tuple[dt.datetime, dt.datetime | None]:
    """(created_at, deleted_at) of one instance, counted back from `anchor`."""
    if deleted:
        deleted_at = anchor - dt.timedelta(days=rng.uniform(1, 360))
        return deleted_at - dt.timedelta(days=rng.uniform(0.01, 30)), deleted_at
    return anchor - dt.timedelta(days=rng.uniform(0.5, 400)), None


def plan_aggregates(
    cells: Sequence[str], hosts: dict[str, list[Host]], rng: random.Random
) -> list[dict[str, Any]]:
    """One availability-zone aggregate per cell, then `ssd` over every other host."""
    aggregates = []
    for cell in cells:
        agg: dict[str, Any] = {
            "name": f"{cell}-az",
            "uuid": new_uuid(rng),
            "metadata": {"availability_zone": f"az-{cell}"},
            "hosts": [h.name for h in hosts[cell]],
        }
        aggregates.append(agg)
        for host in hosts[cell]:
            host.aggregates.append(agg["uuid"])
    ssd: dict[str, Any] = {
        "name": "ssd",
        "uuid": new_uuid(rng),
        "metadata": {"ssd": "true"},
        "hosts": [],
    }
    for cell in cells:
        for host in hosts[cell][::2]:
            ssd["hosts"].append(host.name)
            host.aggregates.append(ssd["uuid"])
    aggregates.append(ssd)
    return aggregates
