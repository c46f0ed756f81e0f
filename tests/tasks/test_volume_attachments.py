"""volume_attachments against real Nova databases and a real Cinder (api + volume service)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nova_audit_ops.engine.report import Code, Status
from nova_audit_ops.engine.state import MemoryStateStore
from testbed import cinder as cinder_bed
from tests import support

pytestmark = pytest.mark.timeout(300)
T0 = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.timezone.utc)
LATER = T0 + dt.timedelta(hours=1)


@pytest.fixture
def cinder(nova_bed: Any) -> Iterator[cinder_bed.Cinder]:
    started = cinder_bed.start(nova_bed)
    try:
        assert cinder_bed.seed(nova_bed, started) > 0, "the bed should have volume-backed servers"
        yield started
    finally:
        cinder_bed.stop(started)


@pytest.fixture
def config(nova_bed: Any, cinder: cinder_bed.Cinder, tmp_path: Path) -> str:
    return support.config_with(nova_bed, tmp_path, cinder=cinder_bed.config_section(cinder))


def run(bed: Any, config: str, state: Any, when: dt.datetime = T0, **params: Any) -> Any:
    return support.run(
        bed, "volume_attachments", config_path=config, state=state, reference_time=when, **params
    )


def statuses(report: Any) -> dict[str, Status]:
    return {f.object_id: f.status for f in report.findings}


def test_consistent_cloud_has_no_drift(nova_bed: Any, config: str) -> None:
    report = run(nova_bed, config, MemoryStateStore(), mode="heal")
    assert report.code == Code.OK, report.findings
    assert report.counts.examined > 0 and report.counts.drifted == 0


def test_dangling_attachments_are_deleted_on_the_second_sighting(
    nova_bed: Any, cinder: cinder_bed.Cinder, config: str
) -> None:
    deleted = cinder_bed.deleted_servers(nova_bed, cinder, 2)
    unknown = cinder_bed.unknown_servers(nova_bed, cinder, 1)
    dangling = {c["attachment_id"] for c in deleted + unknown}
    state = MemoryStateStore()
    before = cinder_bed.attachments(cinder)

    first = run(nova_bed, config, state, mode="heal")
    assert statuses(first) == dict.fromkeys(dangling, Status.LEFT)
    assert cinder_bed.attachments(cinder) == before, "first sighting must not delete"

    audit = run(nova_bed, config, state, when=LATER, mode="audit")
    assert statuses(audit) == dict.fromkeys(dangling, Status.WOULD_FIX)
    assert cinder_bed.attachments(cinder) == before, "audit mode must not delete"

    healed = run(nova_bed, config, state, when=LATER, mode="heal")
    assert statuses(healed) == dict.fromkeys(dangling, Status.FIXED)
    assert healed.code == Code.OK
    remaining = cinder_bed.attachments(cinder)
    assert set(before) - set(remaining) == dangling
    volumes = cinder_bed.get(cinder, "/volumes/detail?all_tenants=1")["volumes"]
    freed = {v["id"]: v["status"] for v in volumes if not v["attachments"]}
    assert {before[a]["volume_id"] for a in dangling} <= set(freed)
    assert set(freed.values()) == {"available"}

    again = run(nova_bed, config, state, when=LATER + dt.timedelta(hours=1), mode="heal")
    assert again.counts.drifted == 0


def test_audit_writes_nothing_to_nova_or_cinder(
    nova_bed: Any, cinder: cinder_bed.Cinder, config: str
) -> None:
    cinder_bed.deleted_servers(nova_bed, cinder, 1)
    cinder_bed.stale_attachments(nova_bed, cinder, 1)
    cinder_bed.lost_attachments(nova_bed, cinder, 1)
    state = MemoryStateStore()
    run(nova_bed, config, state, mode="audit")
    before_db, before_cinder = support.snapshot(nova_bed), cinder_bed.attachments(cinder)
    report = run(nova_bed, config, state, when=LATER, mode="audit")
    assert report.code == Code.WARNING
    assert support.snapshot(nova_bed) == before_db
    assert cinder_bed.attachments(cinder) == before_cinder


def test_live_servers_are_reported_not_touched(
    nova_bed: Any, cinder: cinder_bed.Cinder, config: str
) -> None:
    stale = cinder_bed.stale_attachments(nova_bed, cinder, 1)
    lost = cinder_bed.lost_attachments(nova_bed, cinder, 2)
    lost = [c for c in lost if c["server"] != stale[0]["server"]] or lost
    before = cinder_bed.attachments(cinder)
    state = MemoryStateStore()
    run(nova_bed, config, state, mode="heal")
    report = run(nova_bed, config, state, when=LATER, mode="heal")
    assert cinder_bed.attachments(cinder) == before
    found = {f.object_id: f for f in report.findings}
    assert found[stale[0]["attachment_id"]].status is Status.LEFT
    assert "reboot" in (found[stale[0]["attachment_id"]].fix or "")
    for change in lost:
        assert found[change["server"]].kind == "bdm"
        assert change["attachment_id"] in found[change["server"]].problem


def test_busy_servers_are_skipped(nova_bed: Any, cinder: cinder_bed.Cinder, config: str) -> None:
    [stale] = cinder_bed.stale_attachments(nova_bed, cinder, 1)
    support.execute(
        support.cell_url(nova_bed, stale["cell"]),
        "UPDATE instances SET task_state = 'migrating' WHERE uuid = :u",
        u=stale["server"],
    )
    report = run(nova_bed, config, MemoryStateStore(), mode="heal")
    assert stale["attachment_id"] not in statuses(report)
    assert report.counts.skipped >= 1


def test_a_build_in_flight_is_not_dangling(
    nova_bed: Any, cinder: cinder_bed.Cinder, config: str
) -> None:
    [building] = cinder_bed.unknown_servers(nova_bed, cinder, 1)
    support.execute(
        nova_bed.api_url,
        "INSERT INTO build_requests (instance_uuid, project_id, created_at) "
        "VALUES (:u, 'p1', NOW())",
        u=building["server"],
    )
    state = MemoryStateStore()
    run(nova_bed, config, state, mode="heal")
    report = run(nova_bed, config, state, when=LATER, mode="heal")
    assert building["attachment_id"] not in statuses(report)
    assert building["attachment_id"] in cinder_bed.attachments(cinder)


def test_unreachable_cinder_fails_the_run_and_writes_nothing(nova_bed: Any, tmp_path: Path) -> None:
    config = support.config_with(
        nova_bed,
        tmp_path,
        cinder={"auth_type": "admin_token", "endpoint": "http://127.0.0.1:9/v3", "token": "a:a"},
    )
    before = support.snapshot(nova_bed)
    report = run(nova_bed, config, MemoryStateStore(), mode="heal")
    assert report.code == Code.FAILURE
    assert any("Cinder cannot be reached" in f.problem for f in report.findings)
    assert support.snapshot(nova_bed) == before


def test_missing_cinder_section_is_a_clear_error(nova_bed: Any) -> None:
    report = support.run(nova_bed, "volume_attachments", mode="audit")
    assert report.code == Code.FAILURE
    assert all("[cinder]" in f.problem for f in report.findings)


def test_a_legacy_attachment_is_in_use(
    nova_bed: Any, cinder: cinder_bed.Cinder, config: str
) -> None:
    """A BDM attached the old way (os-attach) has no attachment id: Cinder's one is in use."""
    [stale] = cinder_bed.stale_attachments(nova_bed, cinder, 1)
    support.execute(
        support.cell_url(nova_bed, stale["cell"]),
        "UPDATE block_device_mapping SET attachment_id = NULL WHERE instance_uuid = :u "
        "AND destination_type = 'volume'",
        u=stale["server"],
    )
    report = run(nova_bed, config, MemoryStateStore(), mode="audit")
    assert report.code == Code.OK, report.findings
