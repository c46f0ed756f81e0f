"""discover_hosts against a real Nova schema on MariaDB (test bed clones)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from nova_audit_ops.engine.report import Code, Status
from nova_audit_ops.engine.state import MemoryStateStore
from nova_audit_ops.tasks import discover_hosts
from tests import support


def unmapped_nodes(bed: Any) -> set[tuple[str, str]]:
    found = set()
    for cell in bed.cells:
        if cell.name == "cell0":
            continue
        rows = support.query(cell.url, "SELECT host FROM compute_nodes WHERE mapped = 0")
        found |= {(cell.name, r.host) for r in rows}
    return found


def node_hosts(bed: Any) -> set[tuple[str, str]]:
    found = set()
    for cell in bed.cells:
        if cell.name != "cell0":
            rows = support.query(cell.url, "SELECT host FROM compute_nodes WHERE deleted = 0")
            found |= {(cell.name, r.host) for r in rows}
    return found


def host_mappings(bed: Any) -> set[tuple[str, str]]:
    rows = support.query(
        bed.api_url,
        "SELECT cm.name, hm.host FROM host_mappings hm JOIN cell_mappings cm ON hm.cell_id = cm.id",
    )
    return {(r.name, r.host) for r in rows}


def password(bed: Any) -> str:
    secret = make_url(bed.api_url).password
    assert secret, "the test bed must use a password so masking can be tested"
    return str(secret)


def test_consistent_cloud_has_nothing_to_do(nova_bed: Any) -> None:
    report = support.run(nova_bed, "discover_hosts", mode="heal")
    assert report.code == Code.OK
    assert report.findings == []
    assert host_mappings(nova_bed) == node_hosts(nova_bed)


def test_audit_reports_and_writes_nothing(nova_bed: Any) -> None:
    import testbed

    testbed.drift(nova_bed, "unmapped_hosts", 2)
    testbed.drift(nova_bed, "new_hosts", 1)
    drifted = unmapped_nodes(nova_bed)
    assert len(drifted) == 3
    before = support.snapshot(nova_bed)
    report = support.run(nova_bed, "discover_hosts", mode="audit")
    assert support.snapshot(nova_bed) == before
    assert report.code == Code.WARNING
    assert {(f.cell, f.object_id) for f in report.findings} == drifted
    assert all(f.status is Status.WOULD_FIX and f.fix for f in report.findings)


@pytest.mark.parametrize("count", [pytest.param(2, id="some"), pytest.param(6, id="all")])
def test_heal_maps_unmapped_hosts(nova_bed: Any, count: int) -> None:
    import testbed

    testbed.drift(nova_bed, "unmapped_hosts", count)
    drifted = unmapped_nodes(nova_bed)
    assert len(drifted) == count
    report = support.run(nova_bed, "discover_hosts", mode="heal")
    assert report.code == Code.OK
    assert report.counts.fixed == count
    assert unmapped_nodes(nova_bed) == set()
    assert host_mappings(nova_bed) == node_hosts(nova_bed)
    again = support.run(nova_bed, "discover_hosts", mode="heal")
    assert again.findings == [] and again.counts.examined == len(node_hosts(nova_bed))
    nova_selection = support.run(nova_bed, "discover_hosts", mode="heal", recheck_mapped=False)
    assert nova_selection.findings == [] and nova_selection.counts.examined == 0


def test_new_hosts_are_mapped_to_their_own_cell(nova_bed: Any) -> None:
    import testbed

    testbed.drift(nova_bed, "new_hosts", 2)
    report = support.run(nova_bed, "discover_hosts", mode="heal", cells=["cell2"])
    assert report.cells_checked == ["cell2"]
    mapped = host_mappings(nova_bed)
    for cell, host in node_hosts(nova_bed):
        if cell == "cell2":
            assert (cell, host) in mapped


def test_existing_mapping_only_gets_the_flag(nova_bed: Any) -> None:
    cell1 = support.cell_url(nova_bed, "cell1")
    host = support.query(cell1, "SELECT host FROM compute_nodes ORDER BY id LIMIT 1")[0].host
    support.execute(cell1, "UPDATE compute_nodes SET mapped = 0 WHERE host = :h", h=host)
    before = host_mappings(nova_bed)
    report = support.run(nova_bed, "discover_hosts", mode="heal")
    assert [(f.object_id, f.status) for f in report.findings] == [(host, Status.FIXED)]
    assert "mapped = 0" in report.findings[0].problem
    assert host_mappings(nova_bed) == before
    assert unmapped_nodes(nova_bed) == set()


def test_host_mapped_to_another_cell_is_left_for_the_operator(nova_bed: Any) -> None:
    cell1 = support.cell_url(nova_bed, "cell1")
    host = support.query(cell1, "SELECT host FROM compute_nodes ORDER BY id LIMIT 1")[0].host
    support.execute(cell1, "UPDATE compute_nodes SET mapped = 0 WHERE host = :h", h=host)
    support.execute(
        nova_bed.api_url,
        "UPDATE host_mappings SET cell_id = (SELECT id FROM cell_mappings WHERE name = 'cell2') "
        "WHERE host = :h",
        h=host,
    )
    before = support.snapshot(nova_bed)
    report = support.run(nova_bed, "discover_hosts", mode="heal")
    assert report.code == Code.FAILURE
    (finding,) = report.findings
    assert finding.status is Status.MUST_NOT_FIX
    assert "nova-manage cell_v2 delete_host" in (finding.fix or "")
    assert support.snapshot(nova_bed) == before


def test_mapping_created_meanwhile_is_not_a_crash(
    nova_bed: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """nova-scheduler's periodic discovery can map a host between our read and insert."""
    import testbed

    testbed.drift(nova_bed, "unmapped_hosts", 2)
    (cell, racing_host), *_ = sorted(unmapped_nodes(nova_bed))
    support.execute(
        nova_bed.api_url,
        "INSERT INTO host_mappings (cell_id, host, created_at) "
        "SELECT id, :h, NOW() FROM cell_mappings WHERE name = :c",
        h=racing_host,
        c=cell,
    )
    real_lookup = discover_hosts.host_cells
    calls = []

    def stale_first_read(api: Any, hosts: Any) -> dict[str, int]:
        calls.append(hosts)  # the first (batch) read misses the racing mapping
        return {} if len(calls) == 1 else real_lookup(api, hosts)

    monkeypatch.setattr(discover_hosts, "host_cells", stale_first_read)
    report = support.run(nova_bed, "discover_hosts", mode="heal")
    assert report.code == Code.OK
    assert report.counts.fixed == 2
    assert unmapped_nodes(nova_bed) == set()
    assert host_mappings(nova_bed) == node_hosts(nova_bed)


def test_two_concurrent_runs_do_not_collide(nova_bed: Any) -> None:
    import testbed

    testbed.drift(nova_bed, "new_hosts", 12)
    testbed.drift(nova_bed, "unmapped_hosts", 4)
    command = [
        sys.executable,
        "-m",
        "nova_audit_ops.cli",
        "run",
        "discover_hosts",
        "--config-file",
        str(nova_bed.config_path),
        "--mode",
        "heal",
        "--batch-size",
        "2",
    ]
    procs = [
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    results = [(*p.communicate(timeout=300), p.returncode) for p in procs]
    for out, err, code in results:
        assert code == 0, out + err
        assert "Duplicate" not in err
    assert unmapped_nodes(nova_bed) == set()
    assert host_mappings(nova_bed) == node_hosts(nova_bed)


def test_stops_at_batch_limit_and_resumes(nova_bed: Any) -> None:
    import testbed

    testbed.drift(nova_bed, "unmapped_hosts", 3)
    state = MemoryStateStore()
    first = support.run(
        nova_bed,
        "discover_hosts",
        mode="audit",
        cells=["cell1", "cell2"],
        batch_size=1,
        max_batches=1,
        state=state,
    )
    assert first.more_work and first.code == Code.WARNING
    assert state.values, "a marker is kept per cell"
    seen = {f.object_id for f in first.findings}
    second = support.run(
        nova_bed,
        "discover_hosts",
        mode="audit",
        cells=["cell1", "cell2"],
        batch_size=1,
        max_batches=1,
        state=state,
    )
    assert not seen & {f.object_id for f in second.findings}, "resumed after the marker"


def test_unknown_cell_is_refused_before_writing(nova_bed: Any) -> None:
    import testbed

    testbed.drift(nova_bed, "unmapped_hosts", 1)
    before = support.snapshot(nova_bed)
    result = support.cli(
        "run",
        "discover_hosts",
        "--config-file",
        str(nova_bed.config_path),
        "--mode",
        "heal",
        "--cell",
        "cell1",
        "--cell",
        "atlantis",
    )
    assert result.returncode == 2
    assert "unknown cell 'atlantis'" in result.stderr
    assert "cell1" in result.stderr
    assert support.snapshot(nova_bed) == before


def _config_with(bed: Any, tmp_path: Path, extra: str) -> str:
    path = tmp_path / "override.conf"
    path.write_text(Path(bed.config_path).read_text() + "\n" + extra)
    return str(path)


def test_unreachable_cell_fails_alone_and_leaks_no_password(nova_bed: Any, tmp_path: Path) -> None:
    import testbed

    testbed.drift(nova_bed, "unmapped_hosts", 6)
    bad = "mysql+pymysql://natb:Wr0ngSecretXYZ@127.0.0.1:1/nope"
    conf = _config_with(nova_bed, tmp_path, f"[audit.cells]\ncell2 = {bad}\n")
    code, data = support.cli_json(
        "-v", "run", "discover_hosts", "--config-file", conf, "--mode", "heal"
    )
    assert code == 2
    assert data["cells_failed"] == ["cell2"]
    assert "cell1" in data["cells_checked"]
    assert {n for n in unmapped_nodes(nova_bed) if n[0] == "cell1"} == set()
    assert {n for n in unmapped_nodes(nova_bed) if n[0] == "cell2"}
    result = support.cli("-v", "run", "discover_hosts", "--config-file", conf)
    text = result.stdout + result.stderr
    assert "cell2" in text and "cannot be used" in text
    for secret in ("Wr0ngSecretXYZ", password(nova_bed)):
        assert secret not in text
        assert secret not in str(data)


def test_unreachable_api_database_is_a_clear_error(nova_bed: Any, tmp_path: Path) -> None:
    conf = tmp_path / "bad-api.conf"
    conf.write_text(
        "[api_database]\nconnection = mysql+pymysql://nova:ApiS3cretQQ@127.0.0.1:1/api\n"
    )
    result = support.cli("run", "discover_hosts", "--config-file", str(conf))
    assert result.returncode == 2
    assert "API database at mysql+pymysql://nova:***@127.0.0.1:1/api cannot be used" in (
        result.stderr
    )
    assert "ApiS3cretQQ" not in result.stderr + result.stdout


def test_cli_json_and_exit_codes(nova_bed: Any) -> None:
    import testbed

    testbed.drift(nova_bed, "unmapped_hosts", 1)
    code, data = support.cli_json(
        "run", "discover_hosts", "--config-file", str(nova_bed.config_path)
    )
    assert code == 1
    assert set(data) >= {"task", "mode", "code", "counts", "findings", "more_work"}
    assert data["mode"] == "audit" and data["code"] == 1
    assert data["counts"]["drifted"] == 1
    code, data = support.cli_json(
        "run", "discover_hosts", "--config-file", str(nova_bed.config_path), "--mode", "heal"
    )
    assert (code, data["counts"]["fixed"]) == (0, 1)
    result = support.cli(
        "run", "discover_hosts", "--config-file", str(nova_bed.config_path), "--batch-size", "0"
    )
    assert result.returncode == 2 and "batch_size" in result.stderr


def test_by_service_maps_hosts_without_nodes(nova_bed: Any) -> None:
    cell1 = support.cell_url(nova_bed, "cell1")
    host = support.query(cell1, "SELECT host FROM compute_nodes ORDER BY id LIMIT 1")[0].host
    support.execute(nova_bed.api_url, "DELETE FROM host_mappings WHERE host = :h", h=host)
    audit = support.run(nova_bed, "discover_hosts", mode="audit", recheck_mapped=False)
    assert audit.findings == [], "Nova's selection: a mapped=1 node is not examined"
    report = support.run(
        nova_bed, "discover_hosts", mode="heal", by_service=True, recheck_mapped=False
    )
    assert [(f.object_id, f.status) for f in report.findings] == [(host, Status.FIXED)]
    assert ("cell1", host) in host_mappings(nova_bed)


def test_a_lost_host_mapping_is_found_again(nova_bed: Any) -> None:
    """Nodes flagged mapped whose host mapping is gone (an API DB restored from backup)."""
    cell2 = support.cell_url(nova_bed, "cell2")
    host = support.query(cell2, "SELECT host FROM compute_nodes ORDER BY id LIMIT 1")[0].host
    support.execute(nova_bed.api_url, "DELETE FROM host_mappings WHERE host = :h", h=host)
    before = support.snapshot(nova_bed)
    audit = support.run(nova_bed, "discover_hosts", mode="audit")
    assert support.snapshot(nova_bed) == before
    assert [(f.cell, f.object_id, f.status) for f in audit.findings] == [
        ("cell2", host, Status.WOULD_FIX)
    ]
    assert "flagged mapped" in audit.findings[0].problem
    report = support.run(nova_bed, "discover_hosts", mode="heal")
    assert [(f.object_id, f.status) for f in report.findings] == [(host, Status.FIXED)]
    assert "set compute_nodes.mapped" not in report.findings[0].action
    assert host_mappings(nova_bed) == node_hosts(nova_bed)
    assert support.run(nova_bed, "discover_hosts", mode="heal").findings == []


def test_same_mappings_as_nova_manage(nova_bed: Any, tmp_path: Path) -> None:
    """Done-when of the foundation issue: identical host_mappings on identical drift."""
    import testbed

    testbed.drift(nova_bed, "unmapped_hosts", 3)
    testbed.drift(nova_bed, "new_hosts", 2)
    twin = testbed.clone(nova_bed, tmp_path / "twin")
    try:
        ours = support.run(nova_bed, "discover_hosts", mode="heal")
        assert ours.code == Code.OK and ours.counts.fixed == 5
        theirs = testbed.nova_manage(twin, "cell_v2", "discover_hosts", "--verbose")
        assert theirs.returncode == 0, theirs.stdout + theirs.stderr
        assert host_mappings(nova_bed) == host_mappings(twin)
        assert unmapped_nodes(nova_bed) == unmapped_nodes(twin) == set()
    finally:
        testbed.down(twin.dir)
