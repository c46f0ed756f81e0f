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


def dangle_mapping(bed: Any, uuid: str | None = None) -> str:
    """Point one instance mapping (a new one for `uuid`) at a cell id not in cell_mappings."""
    with support.engine(bed.api_url) as engine, engine.begin() as conn:
        conn.execute(sa.text("SET FOREIGN_KEY_CHECKS = 0"))
        if uuid is None:
            uuid = conn.execute(
                sa.text("SELECT instance_uuid FROM instance_mappings LIMIT 1")
            ).scalar()
            conn.execute(
                sa.text("UPDATE instance_mappings SET cell_id = 9999 WHERE instance_uuid = :u"),
                {"u": uuid},
            )
        else:
            conn.execute(
                sa.text(
                    "INSERT INTO instance_mappings (instance_uuid, cell_id, project_id, "
                    "created_at) VALUES (:u, 9999, 'p-gone', NOW() - INTERVAL 1 DAY)"
                ),
                {"u": uuid},
            )
        conn.execute(sa.text("SET FOREIGN_KEY_CHECKS = 1"))
    return str(uuid)


def assert_lost_once(report: Report, uuid: str) -> Any:
    """One skipped finding names the mapping, the missing cell id and the fix."""
    sound(report)
    [lost] = [f for f in report.findings if f.object_id == uuid]
    assert lost.status is Status.LEFT and "cell id 9999" in lost.problem, lost
    assert lost.fix and "verify_instance" in lost.fix and uuid in lost.fix
    return lost


def test_mapping_to_a_vanished_cell_heal_instance_mappings(nova_bed: Any) -> None:
    uuid = dangle_mapping(nova_bed)
    before = support.snapshot(nova_bed)
    assert_lost_once(support.run(nova_bed, "heal_instance_mappings"), uuid)
    assert support.snapshot(nova_bed) == before
    assert_lost_once(support.run(nova_bed, "heal_instance_mappings", mode="heal"), uuid)
    [row] = support.query(
        nova_bed.api_url, "SELECT cell_id FROM instance_mappings WHERE instance_uuid = :u", u=uuid
    )
    assert row.cell_id == 9999, "a mapping to an unknown cell is left to the operator"


def test_mapping_to_a_vanished_cell_volume_attachments(nova_bed: Any, tmp_path: Path) -> None:
    """A server in no cell, mapped to a vanished cell: its attachment is reported, kept."""
    started = cinder_bed.start(nova_bed)
    try:
        cinder_bed.seed(nova_bed, started)
        config = support.config_with(nova_bed, tmp_path, cinder=cinder_bed.config_section(started))
        in_a_cell = dangle_mapping(nova_bed)  # its server is in a cell: that cell judges it
        [change] = cinder_bed.unknown_servers(nova_bed, started, 1)
        server = dangle_mapping(nova_bed, change["server"])
        before = support.snapshot(nova_bed), cinder_bed.attachments(started)
        for mode in ("audit", "heal"):
            report = support.run(
                nova_bed, "volume_attachments", mode=mode, config_path=config, grace_period=0
            )
            lost = assert_lost_once(report, server)
            assert change["attachment_id"] in lost.problem
            assert not [f for f in report.findings if f.object_id == in_a_cell]
            assert (support.snapshot(nova_bed), cinder_bed.attachments(started)) == before
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
