"""Drift injectors: each breaks the seeded cloud in one way Nova operators meet.

`drift(bed, scenario, count)` changes up to `count` objects and returns one dict
per object changed (scenario, cell and the uuids/hosts involved), so a test can
assert that a task finds exactly those. Objects are picked deterministically
(round-robin over the compute cells, then by id), never ones an earlier drift
already broke. Scenarios that write to Placement need a bed with its own
Placement (`clone(..., with_placement=True)`); `new_hosts` on a bed sharing its
source's Placement creates no resource provider and says so.
"""

from __future__ import annotations

import datetime as dt
import itertools
import random
import uuid as uuidlib
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

import sqlalchemy as sa

from testbed.db import connect, insert_rows, next_id
from testbed.errors import TestBedError
from testbed.placement import PlacementAPI
from testbed.seed import TRAITS
from testbed.state import TestBed

T = TypeVar("T")
Change = dict[str, Any]
CHUNK = 1000


def _rng(bed: TestBed, scenario: str, salt: object) -> random.Random:
    return random.Random(f"{bed.seed}:{scenario}:{salt}")  # noqa: S311 - test data


def _uuid(rng: random.Random) -> str:
    return str(uuidlib.UUID(int=rng.getrandbits(128), version=4))


def round_robin(groups: Sequence[Sequence[T]], count: int) -> list[T]:
    """Up to `count` items, one from each group in turn."""
    picked: list[T] = []
    for items in itertools.zip_longest(*groups):
        for item in items:
            if item is not None and len(picked) < count:
                picked.append(item)
    return picked


def _chunks(items: Sequence[T], size: int = CHUNK) -> Iterable[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _cell_ids(bed: TestBed) -> dict[str, int]:
    with connect(bed.api_url) as conn:
        rows = conn.execute(sa.text("SELECT id, name FROM cell_mappings")).all()
    return {r.name: r.id for r in rows}


def _placement(bed: TestBed, scenario: str) -> PlacementAPI:
    if not bed.owns_placement or not bed.placement_url:
        raise TestBedError(
            f"drift {scenario!r} writes to Placement, but {bed.dir} shares its source's "
            "Placement: clone with with_placement=True (fixture nova_bed_placement)"
        )
    return PlacementAPI(bed.placement_url)


def _anchor(bed: TestBed) -> dt.datetime:
    if bed.anchor:
        return dt.datetime.fromisoformat(bed.anchor).replace(tzinfo=None)
    return dt.datetime(2026, 1, 1)


# --------------------------------------------------------------------------- services


def _services_table(conn: sa.Connection) -> sa.Table:
    """Reflected, so timestamps come back as datetimes on SQLite too."""
    return sa.Table("services", sa.MetaData(), autoload_with=conn)


def _compute_services(conn: sa.Connection) -> list[sa.Row]:
    services = _services_table(conn)
    query = (
        sa.select(services.c.id, services.c.host, services.c.last_seen_up)
        .where(
            services.c.deleted == 0,
            services.c.binary == "nova-compute",
            services.c.forced_down == sa.false(),
        )
        .order_by(services.c.id)
    )
    return list(conn.execute(query))


def _set_heartbeat(conn: sa.Connection, service_ids: Sequence[int], moment: dt.datetime) -> None:
    if service_ids:
        services = _services_table(conn)
        conn.execute(
            services.update().where(services.c.id.in_(service_ids)).values(last_seen_up=moment)
        )


def silent_hosts(bed: TestBed, count: int) -> list[Change]:
    """nova-compute services that stopped reporting an hour before the bed was seeded."""
    silent_since = _anchor(bed) - dt.timedelta(hours=1)
    groups = []
    for cell in bed.compute_cells:
        with connect(cell.url) as conn:
            rows = _compute_services(conn)
        groups.append([(cell, r) for r in rows if r.last_seen_up and r.last_seen_up > silent_since])
    picked = round_robin(groups, count)
    for cell in bed.compute_cells:
        with connect(cell.url) as conn:
            _set_heartbeat(conn, [r.id for c, r in picked if c is cell], silent_since)
    return [
        {"scenario": "silent_hosts", "cell": cell.name, "host": row.host} for cell, row in picked
    ]


def heartbeat(bed: TestBed, at: dt.datetime | None = None) -> int:
    """Every compute service not silenced by `silent_hosts` reports in now (or `at`).

    The seed's heartbeats are as old as the bed; a demo or test that looks at
    service liveness against the wall clock calls this first.
    """
    moment = (at or dt.datetime.now(dt.timezone.utc)).replace(tzinfo=None, microsecond=0)
    silenced_before = _anchor(bed)
    touched = 0
    for cell in bed.compute_cells:
        with connect(cell.url) as conn:
            ids = [
                r.id
                for r in _compute_services(conn)
                if r.last_seen_up is None or r.last_seen_up >= silenced_before
            ]
            _set_heartbeat(conn, ids, moment)
            touched += len(ids)
    return touched


# --------------------------------------------------------------------------- hosts


def unmapped_hosts(bed: TestBed, count: int) -> list[Change]:
    """Remove the host mapping of mapped compute hosts and set their nodes' mapped = 0."""
    with connect(bed.api_url) as api:
        mapped = {r.host for r in api.execute(sa.text("SELECT host FROM host_mappings"))}
    groups = []
    for cell in bed.compute_cells:
        with connect(cell.url) as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT host, uuid FROM compute_nodes WHERE deleted = 0 AND mapped = 1 "
                    "ORDER BY id"
                )
            ).all()
        groups.append([(cell.name, r.host, r.uuid) for r in rows if r.host in mapped])
    picked = round_robin(groups, count)
    with connect(bed.api_url) as api:
        for _, host, _ in picked:
            api.execute(sa.text("DELETE FROM host_mappings WHERE host = :h"), {"h": host})
    for cell in bed.compute_cells:
        hosts = [h for c, h, _ in picked if c == cell.name]
        if hosts:
            with connect(cell.url) as conn:
                conn.execute(
                    sa.text("UPDATE compute_nodes SET mapped = 0 WHERE host IN :hosts").bindparams(
                        sa.bindparam("hosts", expanding=True)
                    ),
                    {"hosts": hosts},
                )
    return [
        {"scenario": "unmapped_hosts", "cell": c, "host": h, "node_uuid": u} for c, h, u in picked
    ]


def new_hosts(bed: TestBed, count: int) -> list[Change]:
    """New compute hosts (service + node with mapped = 0 + resource provider), no mapping."""
    changes: list[Change] = []
    cells = bed.compute_cells
    per_cell = {c.name: 0 for c in cells}
    for i in range(count):
        per_cell[cells[i % len(cells)].name] += 1
    api = PlacementAPI(bed.placement_url) if bed.owns_placement and bed.placement_url else None
    try:
        for cell in cells:
            if not per_cell[cell.name]:
                continue
            with connect(cell.url) as conn:
                nodes = _add_hosts(bed, conn, cell.name, per_cell[cell.name])
            for node_row in nodes:
                change: Change = {
                    "scenario": "new_hosts",
                    "cell": cell.name,
                    "host": node_row["host"],
                    "node_uuid": node_row["uuid"],
                    "provider": "skipped: Placement shared with the source bed",
                }
                if api is not None:
                    _copy_provider(api, node_row["uuid"], node_row["host"])
                    change["provider"] = node_row["uuid"]
                changes.append(change)
    finally:
        if api is not None:
            api.close()
    return changes


def _add_hosts(bed: TestBed, conn: sa.Connection, cell: str, wanted: int) -> list[dict[str, Any]]:
    """`wanted` hosts `<cell>-newNNN` like the cell's first compute host; their node rows."""
    service = _first_row(
        conn,
        "SELECT * FROM services WHERE `binary` = 'nova-compute' "
        "AND deleted = 0 ORDER BY id LIMIT 1",
    )
    node = _first_row(conn, "SELECT * FROM compute_nodes WHERE deleted = 0 ORDER BY id LIMIT 1")
    existing = {r.host for r in conn.execute(sa.text("SELECT host FROM services"))}
    rng = _rng(bed, "new_hosts", f"{cell}:{len(existing)}")
    service_id, node_id = next_id(conn, "services"), next_id(conn, "compute_nodes")
    now = _anchor(bed)
    services, nodes = [], []
    for k, host in enumerate(_free_host_names(cell, existing, wanted)):
        services.append(
            {
                **service,
                "id": service_id + k,
                "uuid": _uuid(rng),
                "host": host,
                "report_count": 1,
                "created_at": now,
                "updated_at": now,
                "last_seen_up": now,
            }
        )
        nodes.append(_empty_node(node, node_id + k, _uuid(rng), host, service_id + k, now))
    insert_rows(conn, "services", services)
    insert_rows(conn, "compute_nodes", nodes)
    return nodes


def _first_row(conn: sa.Connection, sql: str) -> dict[str, Any]:
    """The one row `sql` selects, as a dict."""
    return dict(conn.execute(sa.text(sql)).mappings().one())


def _free_host_names(cell: str, existing: set[str], wanted: int) -> list[str]:
    """`wanted` names `<cell>-newNNN` not in `existing` (which gets them added)."""
    names = []
    number = 1
    for _ in range(wanted):
        while f"{cell}-new{number:03d}" in existing:
            number += 1
        names.append(f"{cell}-new{number:03d}")
        existing.add(names[-1])
    return names


def _empty_node(
    template: dict[str, Any],
    node_id: int,
    uuid: str,
    host: str,
    service_id: int,
    now: dt.datetime,
) -> dict[str, Any]:
    """A compute node like `template` on a new host: unmapped, nothing running on it."""
    return {
        **template,
        "id": node_id,
        "uuid": uuid,
        "host": host,
        "hypervisor_hostname": host,
        "service_id": service_id,
        "mapped": 0,
        "vcpus_used": 0,
        "memory_mb_used": 512,
        "local_gb_used": 0,
        "running_vms": 0,
        "free_ram_mb": template["memory_mb"] - 512,
        "free_disk_gb": template["local_gb"],
        "disk_available_least": template["local_gb"],
        "stats": '{"num_instances": "0"}',
        "created_at": now,
        "updated_at": now,
    }


def _copy_provider(api: PlacementAPI, uuid: str, name: str) -> None:
    """A provider like the first existing compute node's: same inventory and traits."""
    providers = api.get("/resource_providers")["resource_providers"]
    template = next((p for p in providers if not p.get("parent_provider_uuid")), None)
    api.post("/resource_providers", {"uuid": uuid, "name": name})
    generation = 0
    if template is not None:
        inventories = api.get(f"/resource_providers/{template['uuid']}/inventories")
        generation = api.put(
            f"/resource_providers/{uuid}/inventories",
            {"resource_provider_generation": generation, "inventories": inventories["inventories"]},
        )["resource_provider_generation"]
    api.put(
        f"/resource_providers/{uuid}/traits",
        {"resource_provider_generation": generation, "traits": TRAITS},
    )


# --------------------------------------------------------------------------- instance mappings


def _instances(bed: TestBed, live: bool | None = None) -> list[list[tuple[str, str, bool]]]:
    """Per compute cell: (cell, uuid, deleted) ordered by id; live/deleted interleaved."""
    groups = []
    for cell in bed.compute_cells:
        with connect(cell.url) as conn:
            rows = conn.execute(sa.text("SELECT uuid, deleted FROM instances ORDER BY id")).all()
        alive = [(cell.name, r.uuid, False) for r in rows if not r.deleted]
        gone = [(cell.name, r.uuid, True) for r in rows if r.deleted]
        if live is True:
            groups.append(alive)
        elif live is False:
            groups.append(gone)
        else:
            groups.append(round_robin([alive, gone], len(rows)))
    return groups


def _mappings(bed: TestBed) -> dict[str, tuple[int | None, bool]]:
    with connect(bed.api_url) as api:
        rows = api.execute(
            sa.text("SELECT instance_uuid, cell_id, queued_for_delete FROM instance_mappings")
        ).all()
    return {r.instance_uuid: (r.cell_id, bool(r.queued_for_delete)) for r in rows}


def unmapped_instances(bed: TestBed, count: int) -> list[Change]:
    """Delete the instance mappings of live and deleted instances (request specs stay)."""
    mappings = _mappings(bed)
    cell_ids = _cell_ids(bed)
    groups = [
        [i for i in group if mappings.get(i[1], (None,))[0] == cell_ids[i[0]]]
        for group in _instances(bed)
    ]
    picked = round_robin(groups, count)
    with connect(bed.api_url) as api:
        for chunk in _chunks([uuid for _, uuid, _ in picked]):
            api.execute(
                sa.text("DELETE FROM instance_mappings WHERE instance_uuid IN :u").bindparams(
                    sa.bindparam("u", expanding=True)
                ),
                {"u": list(chunk)},
            )
    return [
        {"scenario": "unmapped_instances", "cell": c, "instance_uuid": u, "deleted": d}
        for c, u, d in picked
    ]


def _retarget(
    bed: TestBed, scenario: str, count: int, target: Callable[[str], int | None]
) -> list[Change]:
    mappings = _mappings(bed)
    cell_ids = _cell_ids(bed)
    names = {v: k for k, v in cell_ids.items()}
    groups = [
        [i for i in group if mappings.get(i[1], (None,))[0] == cell_ids[i[0]]]
        for group in _instances(bed, live=True)
    ]
    picked = round_robin(groups, count)
    changes = []
    with connect(bed.api_url) as api:
        for cell, uuid, _ in picked:
            new = target(cell)
            api.execute(
                sa.text("UPDATE instance_mappings SET cell_id = :c WHERE instance_uuid = :u"),
                {"c": new, "u": uuid},
            )
            changes.append(
                {
                    "scenario": scenario,
                    "cell": cell,
                    "instance_uuid": uuid,
                    "mapped_to": names.get(new) if new is not None else None,
                }
            )
    return changes


def null_cell_mappings(bed: TestBed, count: int) -> list[Change]:
    """Set cell_id NULL on mappings of live instances (there is no build request)."""
    return _retarget(bed, "null_cell_mappings", count, lambda cell: None)


def wrong_cell_mappings(bed: TestBed, count: int) -> list[Change]:
    """Point mappings of live instances at another compute cell."""
    cell_ids = _cell_ids(bed)
    names = [c.name for c in bed.compute_cells]
    if len(names) < 2:
        raise TestBedError("wrong_cell_mappings needs a bed with at least two cells")

    def other(cell: str) -> int:
        return cell_ids[names[(names.index(cell) + 1) % len(names)]]

    return _retarget(bed, "wrong_cell_mappings", count, other)


def orphan_mappings(bed: TestBed, count: int) -> list[Change]:
    """Mappings + request specs for instances that exist in no cell, created long ago.

    Every other orphan has a NULL cell (no build request), the rest point at a cell.
    """
    cell_ids = _cell_ids(bed)
    names = [c.name for c in bed.compute_cells]
    with connect(bed.api_url) as api:
        spec_row = api.execute(
            sa.text("SELECT instance_uuid, spec FROM request_specs ORDER BY id LIMIT 1")
        ).first()
        owner = api.execute(
            sa.text("SELECT project_id, user_id FROM instance_mappings ORDER BY id LIMIT 1")
        ).first()
        existing = api.execute(sa.text("SELECT COUNT(*) FROM instance_mappings")).scalar_one()
    rng = _rng(bed, "orphan_mappings", existing)
    when = _anchor(bed) - dt.timedelta(days=10)
    project, user = (owner.project_id, owner.user_id) if owner else ("p", "u")
    changes, mappings, specs = [], [], []
    for i in range(count):
        uuid = _uuid(rng)
        cell = None if i % 2 == 0 else names[(i // 2) % len(names)]
        mappings.append(
            {
                "instance_uuid": uuid,
                "cell_id": cell_ids[cell] if cell else None,
                "project_id": project,
                "user_id": user,
                "queued_for_delete": False,
                "created_at": when,
                "updated_at": None,
            }
        )
        if spec_row is not None:
            specs.append(
                {
                    "instance_uuid": uuid,
                    "spec": spec_row.spec.replace(spec_row.instance_uuid, uuid),
                    "created_at": when,
                    "updated_at": None,
                }
            )
        changes.append({"scenario": "orphan_mappings", "cell": cell, "instance_uuid": uuid})
    with connect(bed.api_url) as api:
        insert_rows(api, "instance_mappings", mappings)
        insert_rows(api, "request_specs", specs)
    return changes


# --------------------------------------------------------------------------- Placement


def _live_with_host(bed: TestBed) -> list[list[tuple[str, str, str, str, str]]]:
    groups = []
    for cell in bed.compute_cells:
        with connect(cell.url) as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT i.uuid, i.project_id, i.user_id, n.uuid AS node FROM instances i "
                    "JOIN compute_nodes n ON n.id = i.compute_id "
                    "WHERE i.deleted = 0 AND i.host IS NOT NULL ORDER BY i.id"
                )
            ).all()
        groups.append([(cell.name, r.uuid, r.project_id, r.user_id, r.node) for r in rows])
    return groups


def _consumers(api: PlacementAPI) -> set[str]:
    """Every consumer with an allocation, one request per provider."""
    found: set[str] = set()
    for rp in api.get("/resource_providers")["resource_providers"]:
        found.update(api.get(f"/resource_providers/{rp['uuid']}/allocations")["allocations"])
    return found


def missing_allocations(bed: TestBed, count: int) -> list[Change]:
    """Delete all Placement allocations of live instances."""
    api = _placement(bed, "missing_allocations")
    changes = []
    try:
        allocated = _consumers(api)
        groups = [[i for i in group if i[1] in allocated] for group in _live_with_host(bed)]
        for cell, uuid, _, _, node in round_robin(groups, count):
            api.delete(f"/allocations/{uuid}")
            changes.append(
                {
                    "scenario": "missing_allocations",
                    "cell": cell,
                    "instance_uuid": uuid,
                    "provider": node,
                }
            )
    finally:
        api.close()
    return changes


def wrong_user_allocations(bed: TestBed, count: int) -> list[Change]:
    """Rewrite allocations of live instances with another user (every other: and project)."""
    api = _placement(bed, "wrong_user_allocations")
    changes = []
    try:
        allocated = _consumers(api)
        groups = [[i for i in group if i[1] in allocated] for group in _live_with_host(bed)]
        picked = round_robin(groups, count)
        rng = _rng(bed, "wrong_user_allocations", len(allocated))
        for n, (cell, uuid, project, user, _) in enumerate(picked):
            current = api.get(f"/allocations/{uuid}")
            if current["project_id"] != project or current["user_id"] != user:
                continue  # already drifted
            new_user = uuidlib.UUID(int=rng.getrandbits(128)).hex
            new_project = project if n % 2 == 0 else uuidlib.UUID(int=rng.getrandbits(128)).hex
            api.put(
                f"/allocations/{uuid}",
                {
                    "allocations": {
                        rp: {"resources": a["resources"]}
                        for rp, a in current["allocations"].items()
                    },
                    "project_id": new_project,
                    "user_id": new_user,
                    "consumer_generation": current["consumer_generation"],
                    "consumer_type": current.get("consumer_type", "INSTANCE"),
                },
            )
            changes.append(
                {
                    "scenario": "wrong_user_allocations",
                    "cell": cell,
                    "instance_uuid": uuid,
                    "project_id": project,
                    "user_id": user,
                    "placement_project_id": new_project,
                    "placement_user_id": new_user,
                }
            )
    finally:
        api.close()
    return changes


def missing_aggregates(bed: TestBed, count: int) -> list[Change]:
    """Remove provider-aggregate memberships that Nova's host aggregates call for."""
    api = _placement(bed, "missing_aggregates")
    changes = []
    try:
        host_cell = {}
        for cell in bed.compute_cells:
            with connect(cell.url) as conn:
                for r in conn.execute(
                    sa.text("SELECT host, uuid FROM compute_nodes WHERE deleted = 0 ORDER BY id")
                ):
                    host_cell[r.host] = (cell.name, r.uuid)
        with connect(bed.api_url) as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT a.uuid, a.name, h.host FROM aggregates a "
                    "JOIN aggregate_hosts h ON h.aggregate_id = a.id ORDER BY a.id, h.id"
                )
            ).all()
        pairs = []
        for agg_uuid, agg_name, host in rows:
            if host not in host_cell:
                continue
            cell_name, rp = host_cell[host]
            current = api.get(f"/resource_providers/{rp}/aggregates")
            if agg_uuid in current["aggregates"]:
                pairs.append((cell_name, host, rp, agg_uuid, agg_name))
        by_cell = [[p for p in pairs if p[0] == c.name] for c in bed.compute_cells]
        for cell_name, host, rp, agg_uuid, agg_name in round_robin(by_cell, count):
            current = api.get(f"/resource_providers/{rp}/aggregates")
            api.put(
                f"/resource_providers/{rp}/aggregates",
                {
                    "aggregates": [a for a in current["aggregates"] if a != agg_uuid],
                    "resource_provider_generation": current["resource_provider_generation"],
                },
            )
            changes.append(
                {
                    "scenario": "missing_aggregates",
                    "cell": cell_name,
                    "host": host,
                    "provider": rp,
                    "aggregate_uuid": agg_uuid,
                    "aggregate": agg_name,
                }
            )
    finally:
        api.close()
    return changes


def orphan_allocations(bed: TestBed, count: int) -> list[Change]:
    """Allocations in Placement for consumers that are no instance anywhere."""
    api = _placement(bed, "orphan_allocations")
    changes = []
    try:
        groups = []
        for cell in bed.compute_cells:
            with connect(cell.url) as conn:
                rows = conn.execute(
                    sa.text("SELECT host, uuid FROM compute_nodes WHERE deleted = 0 ORDER BY id")
                ).all()
            groups.append([(cell.name, r.host, r.uuid) for r in rows])
        providers = round_robin(groups, sum(len(g) for g in groups))
        owner = _live_with_host(bed)
        project, user = next(
            ((i[2], i[3]) for g in owner for i in g), ("orphan-project", "orphan-user")
        )
        rng = _rng(
            bed, "orphan_allocations", len(api.get("/resource_providers")["resource_providers"])
        )
        body = {}
        for n in range(count):
            cell_name, host, rp = providers[n % len(providers)]
            consumer = _uuid(rng)
            body[consumer] = {
                "allocations": {rp: {"resources": {"VCPU": 1, "MEMORY_MB": 512, "DISK_GB": 1}}},
                "project_id": project,
                "user_id": user,
                "consumer_generation": None,
                "consumer_type": "INSTANCE",
            }
            changes.append(
                {
                    "scenario": "orphan_allocations",
                    "cell": cell_name,
                    "host": host,
                    "provider": rp,
                    "consumer_uuid": consumer,
                }
            )
        if body:
            api.post("/allocations", body)
    finally:
        api.close()
    return changes


SCENARIOS: dict[str, Callable[[TestBed, int], list[Change]]] = {
    "unmapped_hosts": unmapped_hosts,
    "new_hosts": new_hosts,
    "unmapped_instances": unmapped_instances,
    "null_cell_mappings": null_cell_mappings,
    "orphan_mappings": orphan_mappings,
    "wrong_cell_mappings": wrong_cell_mappings,
    "missing_allocations": missing_allocations,
    "wrong_user_allocations": wrong_user_allocations,
    "missing_aggregates": missing_aggregates,
    "orphan_allocations": orphan_allocations,
    "silent_hosts": silent_hosts,
}


def drift(bed: TestBed, scenario: str, count: int) -> list[Change]:
    """Inject up to `count` objects of drift of one kind; return what changed."""
    if count < 0:
        raise TestBedError("count must not be negative")
    try:
        inject = SCENARIOS[scenario]
    except KeyError:
        raise TestBedError(
            f"unknown drift scenario {scenario!r}: choose from {', '.join(SCENARIOS)}"
        ) from None
    return inject(bed, count)
