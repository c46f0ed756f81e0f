"""Small helpers for the test bed's own tests (independent of the product package)."""

from __future__ import annotations

import json
from typing import Any

from testbed import TestBed

# The bed's SQL helpers (testbed.db), under the names the tests call.
from testbed.db import execute as execute
from testbed.db import query, scalar
from testbed.placement import PlacementAPI
from testbed.snapshot import snapshot_databases

tables = snapshot_databases  # checksums of every table of the API DB and every cell DB


def placement(bed: TestBed) -> PlacementAPI:
    assert bed.placement_url
    return PlacementAPI(bed.placement_url)


def allocations(bed: TestBed, consumer: str) -> dict[str, Any]:
    api = placement(bed)
    try:
        return dict(api.get(f"/allocations/{consumer}"))
    finally:
        api.close()


def host_mappings(bed: TestBed) -> set[tuple[str, str]]:
    rows = query(
        bed.api_url,
        "SELECT c.name, h.host FROM host_mappings h JOIN cell_mappings c ON c.id = h.cell_id",
    )
    return {(r.name, r.host) for r in rows}


def compute_hosts(bed: TestBed, mapped: int | None = None) -> set[tuple[str, str]]:
    found = set()
    for cell in bed.compute_cells:
        sql = "SELECT host FROM compute_nodes WHERE deleted = 0"
        if mapped is not None:
            sql += f" AND mapped = {int(mapped)}"
        found |= {(cell.name, r.host) for r in query(cell.url, sql)}
    return found


def instances(bed: TestBed) -> dict[str, tuple[str, bool]]:
    """instance uuid -> (cell name, deleted) over every cell, cell0 included."""
    found = {}
    for cell in bed.cells:
        for r in query(cell.url, "SELECT uuid, deleted FROM instances"):
            found[r.uuid] = (cell.name, bool(r.deleted))
    return found


def mappings(bed: TestBed) -> dict[str, tuple[str | None, bool]]:
    """instance uuid -> (cell name or None, queued_for_delete)."""
    rows = query(
        bed.api_url,
        "SELECT m.instance_uuid, c.name, m.queued_for_delete FROM instance_mappings m "
        "LEFT JOIN cell_mappings c ON c.id = m.cell_id",
    )
    return {r.instance_uuid: (r.name, bool(r.queued_for_delete)) for r in rows}


def flavor_of(bed: TestBed, cell: str, instance_uuid: str) -> dict[str, Any]:
    blob = scalar(
        bed.cell(cell).url,
        "SELECT flavor FROM instance_extra WHERE instance_uuid = :u",
        u=instance_uuid,
    )
    return dict(json.loads(blob))
