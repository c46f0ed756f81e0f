"""up / clone / reset / down: databases, Placement, config files, beds side by side."""

from __future__ import annotations

import configparser
import os
from pathlib import Path

import pytest
import requests
from sqlalchemy.engine import make_url

import testbed
from testbed import CELL0_UUID, TestBed
from testbed.backends import admin_connection, run
from tests.testbed.util import execute, placement, query, scalar, tables


def databases(prefix: str) -> set[str]:
    like = prefix.replace("_", "\\_") + "\\_%"
    with admin_connection() as conn:
        return {r[0] for r in run(conn, f"SHOW DATABASES LIKE '{like}'")}


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "zombie" not in status.read_text()


def test_template_is_a_complete_bed(nova_template: TestBed) -> None:
    bed = nova_template
    assert databases(bed.prefix) == {
        f"{bed.prefix}_{role}" for role in ("api", "cell0", "cell1", "cell2", "placement")
    }
    assert [c.name for c in bed.cells] == ["cell0", "cell1", "cell2"]
    assert bed.cells[0].uuid == CELL0_UUID
    stored = {
        r.name: (r.uuid, r.database_connection)
        for r in query(bed.api_url, "SELECT * FROM cell_mappings")
    }
    assert stored == {c.name: (c.uuid, c.url) for c in bed.cells}
    secret = make_url(bed.api_url).password
    assert secret and len(secret) >= 16, "cell mappings must hold a real password"
    assert all(make_url(c.url).password == secret for c in bed.cells)
    assert testbed.load(bed.dir) == bed

    assert requests.get(f"{bed.placement_url}/", timeout=5).status_code == 200
    api = placement(bed)
    try:
        providers = api.get("/resource_providers")["resource_providers"]
    finally:
        api.close()
    assert len(providers) == 6

    audit = configparser.ConfigParser()
    audit.read(bed.config_path)
    assert audit["api_database"]["connection"] == bed.api_url
    assert dict(audit["placement"]) == {
        "auth_type": "admin_token",
        "endpoint": bed.placement_url,
        "token": "admin",
    }
    assert audit["audit"]["mode"] == "audit"
    assert "cinder" not in audit
    nova = configparser.ConfigParser(interpolation=None)
    nova.read(bed.nova_conf_path)
    assert nova["api_database"]["connection"] == bed.api_url
    assert nova["database"]["connection"] == bed.cell("cell1").url


def test_clone_is_independent_and_down_removes_everything(
    nova_template: TestBed, tmp_path: Path
) -> None:
    before = tables(nova_template)
    twin = testbed.clone(nova_template, tmp_path / "twin")
    try:
        assert twin.prefix != nova_template.prefix
        assert databases(twin.prefix) == {
            f"{twin.prefix}_{role}" for role in ("api", "cell0", "cell1", "cell2")
        }
        assert not twin.owns_placement and twin.placement_url == nova_template.placement_url
        stored = {
            r.uuid: r.database_connection
            for r in query(twin.api_url, "SELECT * FROM cell_mappings")
        }
        assert stored == {c.uuid: c.url for c in twin.cells}
        assert all(twin.prefix in url for url in stored.values())
        copied = tables(twin)
        for db, shot in before.items():
            expected = {t: v for t, v in shot.items() if t != "cell_mappings"}
            assert {t: v for t, v in copied[db].items() if t != "cell_mappings"} == expected

        testbed.drift(twin, "unmapped_hosts", 2)
        execute(twin.cell("cell1").url, "DELETE FROM instance_system_metadata")
        assert tables(nova_template) == before
    finally:
        removed = testbed.down(twin.dir)
    assert databases(twin.prefix) == set()
    assert not twin.dir.exists()
    assert any("cell1" in item for item in removed)
    assert pid_alive(nova_template.placement_pid), "down of a clone must not stop the template"


def test_two_beds_with_own_placement_side_by_side(nova_template: TestBed, tmp_path: Path) -> None:
    one = testbed.clone(nova_template, tmp_path / "one", with_placement=True)
    two = testbed.clone(nova_template, tmp_path / "two", with_placement=True)
    try:
        assert len({one.prefix, two.prefix, nova_template.prefix}) == 3
        assert len({one.placement_url, two.placement_url, nova_template.placement_url}) == 3
        assert pid_alive(one.placement_pid) and pid_alive(two.placement_pid)
        assert f"{one.prefix}_placement" in databases(one.prefix)
        changed = testbed.drift(one, "missing_allocations", 3)
        gone = {c["instance_uuid"] for c in changed}
        for bed, expect_empty in ((one, True), (two, False), (nova_template, False)):
            api = placement(bed)
            try:
                for uuid in gone:
                    assert bool(api.get(f"/allocations/{uuid}")["allocations"]) != expect_empty
            finally:
                api.close()
    finally:
        testbed.down(one.dir)
        pid = two.placement_pid
        testbed.down(two.dir)
    assert not pid_alive(one.placement_pid) and not pid_alive(pid)
    assert databases(one.prefix) == databases(two.prefix) == set()


def test_reset_gives_back_an_exact_copy(nova_template: TestBed, tmp_path: Path) -> None:
    bed = testbed.clone(nova_template, tmp_path / "bed", with_placement=True)
    try:
        fresh_tables = tables(bed)
        fresh_placement = testbed.snapshot_placement(bed)
        pid = bed.placement_pid
        for scenario in ("unmapped_hosts", "new_hosts", "orphan_mappings", "missing_allocations"):
            testbed.drift(bed, scenario, 2)
        execute(bed.cell("cell2").url, "DELETE FROM instance_system_metadata WHERE id < 10")
        (bed.dir / "state").mkdir(exist_ok=True)
        (bed.dir / "state" / "marker.json").write_text("{}")
        assert tables(bed) != fresh_tables

        testbed.reset(bed, nova_template)
        assert tables(bed) == fresh_tables, "rows and AUTO_INCREMENT counters are restored"
        assert testbed.snapshot_placement(bed) == fresh_placement
        assert bed.placement_pid == pid, "Placement keeps running when its caches are intact"
        assert not (bed.dir / "state").exists()

        testbed.down(bed.dir)  # a test may take its bed down; reset copes
        testbed.reset(bed, nova_template)
        assert tables(bed) == fresh_tables
        assert testbed.snapshot_placement(bed) == fresh_placement
    finally:
        testbed.down(bed.dir)


def test_fixture_beds_are_fresh_copies(nova_bed: TestBed, nova_template: TestBed) -> None:
    assert nova_bed.prefix != nova_template.prefix
    assert scalar(nova_bed.api_url, "SELECT COUNT(*) FROM host_mappings") == 6
    assert (
        scalar(nova_bed.cell("cell1").url, "SELECT COUNT(*) FROM compute_nodes WHERE mapped = 0")
        == 0
    )
    testbed.drift(nova_bed, "unmapped_hosts", 6)  # the next test gets a clean copy again


@pytest.mark.parametrize("round_", [1, 2])
def test_fixture_beds_do_not_leak_between_tests(nova_bed: TestBed, round_: int) -> None:
    assert scalar(nova_bed.api_url, "SELECT COUNT(*) FROM host_mappings") == 6
    assert not (nova_bed.dir / "state").exists()
    testbed.drift(nova_bed, "unmapped_hosts", 6)


def test_placement_fixture_bed_has_its_own_placement(
    nova_bed_placement: TestBed, nova_template: TestBed
) -> None:
    assert nova_bed_placement.owns_placement
    assert nova_bed_placement.placement_url != nova_template.placement_url
    assert testbed.snapshot_placement(nova_bed_placement) == testbed.snapshot_placement(
        nova_template
    )
    testbed.drift(nova_bed_placement, "orphan_allocations", 2)


def test_unknown_scenario_and_shared_placement_are_refused(nova_bed: TestBed) -> None:
    with pytest.raises(testbed.TestBedError, match="unknown drift scenario"):
        testbed.drift(nova_bed, "gremlins", 1)
    with pytest.raises(testbed.TestBedError, match="with_placement=True"):
        testbed.drift(nova_bed, "missing_allocations", 1)
