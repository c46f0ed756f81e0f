"""map_instances against a real Nova schema on MariaDB (test bed clones)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from nova_audit_ops.engine.report import Code, Status
from nova_audit_ops.engine.state import MemoryStateStore
from nova_audit_ops.tasks import map_instances
from tests import support

MARKER = "INSTANCE_MIGRATION_MARKER"


def instances(bed: Any) -> dict[str, tuple[str, str, str | None, bool]]:
    """uuid -> (cell, project, user, deleted-or-soft-deleted) over every cell."""
    found = {}
    for cell in bed.cells:
        rows = support.query(
            cell.url, "SELECT uuid, project_id, user_id, deleted, vm_state FROM instances"
        )
        for r in rows:
            gone = bool(r.deleted) or r.vm_state == "soft-delete"
            found[r.uuid] = (cell.name, r.project_id, r.user_id, gone)
    return found


def mappings(bed: Any) -> dict[str, tuple[str | None, str, str | None, bool]]:
    rows = support.query(
        bed.api_url,
        "SELECT im.instance_uuid, cm.name, im.project_id, im.user_id, im.queued_for_delete "
        "FROM instance_mappings im LEFT JOIN cell_mappings cm ON im.cell_id = cm.id",
    )
    return {
        r.instance_uuid: (r.name, r.project_id, r.user_id, bool(r.queued_for_delete)) for r in rows
    }


def unmapped(bed: Any) -> set[str]:
    return set(instances(bed)) - set(mappings(bed))


def test_consistent_cloud_has_nothing_to_map(nova_bed: Any) -> None:
    report = support.run(nova_bed, "map_instances", mode="heal")
    assert report.code == Code.OK and report.findings == []
    assert report.counts.examined == len(instances(nova_bed))
    assert "cell0" in report.cells_checked


def test_audit_lists_unmapped_and_writes_nothing(nova_bed: Any) -> None:
    import testbed

    testbed.drift(nova_bed, "unmapped_instances", 6)
    missing = unmapped(nova_bed)
    assert len(missing) == 6
    before = support.snapshot(nova_bed)
    report = support.run(nova_bed, "map_instances", mode="audit")
    assert support.snapshot(nova_bed) == before
    assert report.code == Code.WARNING
    assert {f.object_id for f in report.findings} == missing
    assert all(f.status is Status.WOULD_FIX for f in report.findings)


def test_heal_creates_correct_mappings(nova_bed: Any) -> None:
    import testbed

    testbed.drift(nova_bed, "unmapped_instances", 8)
    missing = unmapped(nova_bed)
    report = support.run(nova_bed, "map_instances", mode="heal", batch_size=3)
    assert report.code == Code.OK and report.counts.fixed == 8
    assert unmapped(nova_bed) == set()
    have, truth = mappings(nova_bed), instances(nova_bed)
    for uuid in missing:
        cell, project, user, gone = truth[uuid]
        assert have[uuid] == (cell, project, user, gone), uuid
    assert any(truth[u][3] for u in missing), "the drift should include deleted instances"
    assert support.run(nova_bed, "map_instances", mode="heal").findings == []


def test_nova_marker_row_is_never_touched(nova_bed: Any) -> None:
    import testbed

    testbed.drift(nova_bed, "unmapped_instances", 2)
    support.execute(
        nova_bed.api_url,
        "INSERT INTO instance_mappings (instance_uuid, cell_id, project_id, user_id, created_at) "
        "VALUES ('aaaaaaaa aaaa aaaa aaaa aaaaaaaaaaaa', NULL, :m, :m, NOW())",
        m=MARKER,
    )
    report = support.run(nova_bed, "map_instances", mode="heal")
    assert report.counts.fixed == 2
    rows = support.query(
        nova_bed.api_url, "SELECT cell_id FROM instance_mappings WHERE project_id = :m", m=MARKER
    )
    assert [r.cell_id for r in rows] == [None]


def test_budget_stops_and_next_run_resumes(nova_bed: Any) -> None:
    import testbed

    testbed.drift(nova_bed, "unmapped_instances", 10)
    state = MemoryStateStore()
    first = support.run(
        nova_bed,
        "map_instances",
        mode="heal",
        cells=["cell1"],
        batch_size=4,
        max_batches=1,
        state=state,
    )
    assert first.more_work and first.code == Code.WARNING
    assert first.markers["cell1"]["last_id"] > 0
    runs = 1
    while True:
        report = support.run(
            nova_bed,
            "map_instances",
            mode="heal",
            cells=["cell1"],
            batch_size=4,
            max_batches=1,
            state=state,
        )
        runs += 1
        if not report.more_work:
            break
        assert runs < 50
    assert not state.values, "the marker is cleared when the cell is done"
    assert not {u for u in unmapped(nova_bed) if instances(nova_bed)[u][0] == "cell1"}


def test_crash_mid_run_then_rerun_finishes_without_duplicates(
    nova_bed: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import testbed

    testbed.drift(nova_bed, "unmapped_instances", 10)
    state = MemoryStateStore()
    real = map_instances._map_batch
    calls = {"n": 0}

    def dying(*args: Any, **kwargs: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            raise SystemExit("killed")
        real(*args, **kwargs)

    monkeypatch.setattr(map_instances, "_map_batch", dying)
    with pytest.raises(SystemExit):
        support.run(nova_bed, "map_instances", mode="heal", batch_size=3, state=state)
    monkeypatch.setattr(map_instances, "_map_batch", real)
    assert state.values, "the interrupted run left a resume marker"
    report = support.run(nova_bed, "map_instances", mode="heal", batch_size=3, state=state)
    assert report.code == Code.OK
    assert unmapped(nova_bed) == set()
    rows = support.query(
        nova_bed.api_url,
        "SELECT instance_uuid, COUNT(*) AS n FROM instance_mappings GROUP BY instance_uuid "
        "HAVING COUNT(*) > 1",
    )
    assert rows == []


def test_same_mappings_as_nova_manage(nova_bed: Any, tmp_path: Path) -> None:
    """Side by side: identical mappings, except queued_for_delete for deleted instances."""
    import testbed

    testbed.drift(nova_bed, "unmapped_instances", 8)
    twin = testbed.clone(nova_bed, tmp_path / "twin")
    try:
        report = support.run(nova_bed, "map_instances", mode="heal")
        assert report.code == Code.OK
        for cell in twin.cells:
            done = testbed.nova_manage(twin, "cell_v2", "map_instances", "--cell_uuid", cell.uuid)
            assert done.returncode == 0, done.stdout + done.stderr
        ours, theirs = mappings(nova_bed), mappings(twin)
        assert set(ours) == set(theirs)
        truth = instances(nova_bed)
        for uuid, (cell, project, user, queued) in ours.items():
            assert theirs[uuid][:3] == (cell, project, user)
            if theirs[uuid][3] != queued:
                assert queued and truth[uuid][3], "we differ only by marking deleted ones queued"
    finally:
        testbed.down(twin.dir)
