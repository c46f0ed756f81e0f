"""Malformed rows on the MariaDB bed: each is one finding (or skipped), the run goes on."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import testbed
from nova_audit_ops import runner
from nova_audit_ops.engine.report import Report, Status
from testbed import cinder as cinder_bed
from tests import support

BAD_FLAVORS = {
    "not_json": "{not json",
    "no_vcpus": json.dumps({"cur": {"nova_object.data": {"memory_mb": 512}}}),
    "extra_specs_list": json.dumps(
        {"cur": {"nova_object.data": {"vcpus": 1, "memory_mb": 512, "extra_specs": ["x"]}}}
    ),
}


def sound(report: Report) -> None:
    """No cell failed and nothing crashed."""
    assert report.cells_failed == [], [f.problem for f in report.findings if f.kind == "cell"]
    assert runner.crashes(report) == 0


@pytest.mark.parametrize("raw", sorted(BAD_FLAVORS))
def test_bad_flavor_is_one_failed_instance(nova_bed_placement: Any, raw: str) -> None:
    bed = nova_bed_placement
    changes = testbed.drift(bed, "missing_allocations", 2)
    broken = changes[0]["instance_uuid"]
    support.execute(
        support.cell_url(bed, changes[0]["cell"]),
        "UPDATE instance_extra SET flavor = :f WHERE instance_uuid = :u",
        f=BAD_FLAVORS[raw],
        u=broken,
    )
    report = support.run(bed, "heal_allocations", mode="heal")
    sound(report)
    status = {f.object_id: f for f in report.findings}
    failed = status.pop(broken)
    assert failed.status is Status.FAILED and "instance_extra.flavor" in failed.problem
    assert failed.fix
    assert {f.status for f in status.values()} == {Status.FIXED}


def test_instance_without_host_or_node_is_one_skipped_finding(nova_bed_placement: Any) -> None:
    """Nova's heal_allocations skips it ('is not on a host'); so do we, saying so, once."""
    bed = nova_bed_placement
    changes = testbed.drift(bed, "missing_allocations", 2)
    broken = changes[0]["instance_uuid"]
    support.execute(
        support.cell_url(bed, changes[0]["cell"]),
        "UPDATE instances SET host = NULL, node = NULL WHERE uuid = :u",
        u=broken,
    )
    before = support.snapshot(bed), testbed.snapshot_placement(bed)
    audit = support.run(bed, "heal_allocations")
    sound(audit)
    assert (support.snapshot(bed), testbed.snapshot_placement(bed)) == before
    report = support.run(bed, "heal_allocations", mode="heal")
    sound(report)
    assert [f.status for f in report.findings if f.object_id != broken] == [Status.FIXED]
    [skipped] = [f for f in report.findings if f.object_id == broken]
    assert skipped.status is Status.LEFT and "not on a host" in skipped.problem
    assert broken in skipped.problem and skipped.fix and broken in skipped.fix
    assert report.counts.skipped >= 1


def dangle_one_mapping(bed: Any) -> str:
    """Point one instance mapping at a cell id that is not in cell_mappings."""
    with support.engine(bed.api_url) as engine, engine.begin() as conn:
        uuid = conn.execute(sa.text("SELECT instance_uuid FROM instance_mappings LIMIT 1")).scalar()
        conn.execute(sa.text("SET FOREIGN_KEY_CHECKS = 0"))
        conn.execute(
            sa.text("UPDATE instance_mappings SET cell_id = 9999 WHERE instance_uuid = :u"),
            {"u": uuid},
        )
        conn.execute(sa.text("SET FOREIGN_KEY_CHECKS = 1"))
    return str(uuid)


def test_mapping_to_a_vanished_cell_heal_instance_mappings(nova_bed: Any) -> None:
    dangle_one_mapping(nova_bed)
    for mode in ("audit", "heal"):
        sound(support.run(nova_bed, "heal_instance_mappings", mode=mode))


def test_mapping_to_a_vanished_cell_volume_attachments(nova_bed: Any, tmp_path: Path) -> None:
    started = cinder_bed.start(nova_bed)
    try:
        cinder_bed.seed(nova_bed, started)
        config = support.config_with(nova_bed, tmp_path, cinder=cinder_bed.config_section(started))
        dangle_one_mapping(nova_bed)
        for mode in ("audit", "heal"):
            sound(support.run(nova_bed, "volume_attachments", mode=mode, config_path=config))
    finally:
        cinder_bed.stop(started)


def null_one_node_uuid(bed: Any) -> str:
    url = support.cell_url(bed, "cell1")
    row = support.query(url, "SELECT id, host FROM compute_nodes WHERE deleted = 0 LIMIT 1")[0]
    support.execute(url, "UPDATE compute_nodes SET uuid = NULL WHERE id = :i", i=row.id)
    return str(row.host)


@pytest.mark.parametrize(
    "task", ["discover_hosts", "sync_aggregates", "orphaned_allocations", "preflight"]
)
def test_compute_node_with_null_uuid(nova_bed_placement: Any, task: str) -> None:
    bed = nova_bed_placement
    host = null_one_node_uuid(bed)
    modes = ("audit",) if task == "preflight" else ("audit", "heal")
    for mode in modes:
        report = support.run(bed, task, mode=mode)
        sound(report)
        if task in ("sync_aggregates", "preflight"):
            nameless = [f for f in report.findings if "uuid" in f.problem and host in f.problem]
            assert len(nameless) == 1 and nameless[0].fix, report.findings
