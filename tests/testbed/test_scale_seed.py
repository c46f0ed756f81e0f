"""The scale seeder (testbed/scale_seed.py): cloned schemas, the counts asked, 2 % drift.

One tiny cloud (200 instances over 2 cells) for the module; the audit runs of
map_instances and heal_allocations must find exactly the drift the seeder says it
injected, and write nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import testbed
from testbed import TestBed
from testbed.scale_seed import TEMPLATE, hosts_for, inject, scale_up
from tests.conftest import require_mariadb
from tests.support import cli_json
from tests.testbed.util import query, scalar, tables

INSTANCES, CELLS = 200, 2


@pytest.fixture(scope="module")
def scale_bed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestBed, dict]]:
    require_mariadb()
    directory = Path(tmp_path_factory.mktemp("scale-seed"))
    try:
        bed = scale_up(directory, INSTANCES, CELLS)
        changes = inject(bed)
        yield bed, changes
    finally:
        testbed.down(directory)


def _schema(url: str) -> list[tuple]:
    return [
        tuple(r)
        for r in query(
            url,
            "SELECT table_name, column_name, column_type, is_nullable "
            "FROM information_schema.columns WHERE table_schema = DATABASE() "
            "ORDER BY table_name, ordinal_position",
        )
    ]


def _foreign_keys(url: str) -> int:
    return int(
        scalar(
            url,
            "SELECT COUNT(*) FROM information_schema.referential_constraints "
            "WHERE constraint_schema = DATABASE()",
        )
    )


def test_every_cell_has_the_migrated_cells_schema_with_its_foreign_keys(scale_bed) -> None:
    bed, _ = scale_bed
    template = next(c for c in bed.cells if c.name == TEMPLATE)
    assert _foreign_keys(template.url) > 0
    for cell in bed.cells:
        assert _schema(cell.url) == _schema(template.url), cell.name
        assert _foreign_keys(cell.url) == _foreign_keys(template.url), cell.name


def test_counts_are_what_was_asked(scale_bed) -> None:
    bed, _ = scale_bed
    assert len(bed.compute_cells) == CELLS
    for cell in bed.compute_cells:
        assert scalar(cell.url, "SELECT COUNT(*) FROM instances") == INSTANCES // CELLS
        assert scalar(cell.url, "SELECT COUNT(*) FROM instances WHERE deleted != 0") == (
            INSTANCES // CELLS // 5
        )
        assert scalar(cell.url, "SELECT COUNT(*) FROM compute_nodes") == hosts_for(INSTANCES, CELLS)
        for child in ("instance_extra", "instance_info_caches"):
            assert scalar(cell.url, f"SELECT COUNT(*) FROM {child}") == INSTANCES // CELLS


def test_drift_is_two_percent_per_task(scale_bed) -> None:
    bed, changes = scale_bed
    live = INSTANCES - INSTANCES // 5
    expected = round(live * 0.02)
    assert len(changes["unmapped_instances"]) == expected
    assert len(changes["null_cell_mappings"]) + len(changes["wrong_cell_mappings"]) == expected
    assert len(changes["missing_allocations"]) == expected
    assert len(changes["orphan_allocations"]) == expected
    assert len(changes["unmapped_hosts"]) == 1
    consumers = {r.uuid for r in query(bed.placement_db_url, "SELECT uuid FROM consumers")}
    assert not {c["instance_uuid"] for c in changes["missing_allocations"]} & consumers
    assert {c["consumer_uuid"] for c in changes["orphan_allocations"]} <= consumers


@pytest.mark.parametrize(
    ("task", "scenario"),
    [("map_instances", "unmapped_instances"), ("heal_allocations", "missing_allocations")],
)
def test_audit_finds_exactly_the_seeded_drift(scale_bed, task: str, scenario: str) -> None:
    bed, changes = scale_bed
    before = tables(bed), testbed.snapshot_placement(bed)
    code, report = cli_json("run", task, "--config-file", str(bed.config_path), "--mode", "audit")
    assert code == 1, report
    found = {f["object_id"] for f in report["findings"] if f["status"] == "would_fix"}
    assert found == {c["instance_uuid"] for c in changes[scenario]}
    assert (tables(bed), testbed.snapshot_placement(bed)) == before
