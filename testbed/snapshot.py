"""Fingerprints of a bed's state, to prove that an audit run wrote nothing.

`snapshot_tables(url)` gives every table of one database a content hash
(MariaDB: CHECKSUM TABLE plus the AUTO_INCREMENT counter, so even a rolled-back
INSERT shows; SQLite: a hash of all rows in rowid order). `snapshot_placement(bed)`
records every provider's generation, inventories, traits, aggregates and
allocations, and every consumer's project, user and generation.
"""

from __future__ import annotations

import hashlib
from typing import Any

import sqlalchemy as sa

from testbed.db import make_engine
from testbed.placement import PlacementAPI
from testbed.state import TestBed


def snapshot_tables(url: str) -> dict[str, str]:
    """{table: fingerprint} for every table of the database at `url`."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            if engine.dialect.name in ("mysql", "mariadb"):
                return _mysql(conn)
            return _generic(conn)
    finally:
        engine.dispose()


def snapshot_databases(bed: TestBed) -> dict[str, dict[str, str]]:
    """`snapshot_tables` of the API DB ("api") and of every cell DB (by cell name)."""
    shots = {"api": snapshot_tables(bed.api_url)}
    for cell in bed.cells:
        shots[cell.name] = snapshot_tables(cell.url)
    return shots


def _mysql(conn: sa.Connection) -> dict[str, str]:
    rows = conn.execute(
        sa.text(
            "SELECT table_name, auto_increment FROM information_schema.tables "
            "WHERE table_schema = DATABASE() AND table_type = 'BASE TABLE'"
        )
    ).all()
    counters = {r[0]: r[1] for r in rows}
    if not counters:
        return {}
    quoted = ", ".join(f"`{t}`" for t in sorted(counters))
    sums = conn.exec_driver_sql(f"CHECKSUM TABLE {quoted}").all()
    return {
        str(r[0]).split(".", 1)[1]: f"{r[1]}/ai={counters[str(r[0]).split('.', 1)[1]]}"
        for r in sums
    }


def _generic(conn: sa.Connection) -> dict[str, str]:
    result = {}
    for table in sorted(sa.inspect(conn).get_table_names()):
        digest = hashlib.sha256()
        order = "rowid" if conn.dialect.name == "sqlite" else "1"
        for row in conn.execute(sa.text(f'SELECT * FROM "{table}" ORDER BY {order}')):
            digest.update(repr(tuple(row)).encode())
        result[table] = digest.hexdigest()
    return result


def snapshot_placement(bed: TestBed, consumers: bool = True) -> dict[str, Any]:
    """Everything in the bed's Placement that a healing task could change."""
    if not bed.placement_url:
        return {}
    api = PlacementAPI(bed.placement_url)
    try:
        shot: dict[str, Any] = {"providers": {}, "consumers": {}}
        seen: set[str] = set()
        for rp in sorted(
            api.get("/resource_providers")["resource_providers"], key=lambda p: p["uuid"]
        ):
            uuid = rp["uuid"]
            allocations = api.get(f"/resource_providers/{uuid}/allocations")["allocations"]
            seen.update(allocations)
            shot["providers"][uuid] = {
                "name": rp["name"],
                "generation": rp["generation"],
                "parent": rp.get("parent_provider_uuid"),
                "inventories": api.get(f"/resource_providers/{uuid}/inventories")["inventories"],
                "traits": sorted(api.get(f"/resource_providers/{uuid}/traits")["traits"]),
                "aggregates": sorted(
                    api.get(f"/resource_providers/{uuid}/aggregates")["aggregates"]
                ),
                "allocations": allocations,
            }
        if consumers:
            for consumer in sorted(seen):
                data = api.get(f"/allocations/{consumer}")
                shot["consumers"][consumer] = {
                    "project_id": data.get("project_id"),
                    "user_id": data.get("user_id"),
                    "generation": data.get("consumer_generation"),
                    "type": data.get("consumer_type"),
                }
        shot["resource_classes"] = sorted(
            rc["name"] for rc in api.get("/resource_classes")["resource_classes"]
        )
        shot["custom_traits"] = sorted(api.get("/traits?name=startswith:CUSTOM_")["traits"])
        return shot
    finally:
        api.close()
