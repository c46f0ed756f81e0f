"""The kill-test tools themselves: save/restore, fingerprints that can fail, real kills."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from testbed import fingerprint, killpoint, savepoint
from tests import support

ACTION = (
    "INSERT INTO instance_actions (action, instance_uuid, request_id, created_at, deleted) "
    "VALUES ('resetState', :u, :r, NOW(), 0)"
)
EVENT = (
    "INSERT INTO instance_actions_events (event, action_id, created_at, deleted) "
    "SELECT 'reset', MAX(id), NOW(), 0 FROM instance_actions"
)


def _act(url: str, request_id: str) -> None:
    uuid = support.query(url, "SELECT uuid FROM instances ORDER BY id LIMIT 1")[0].uuid
    support.execute(url, ACTION, u=uuid, r=request_id)
    support.execute(url, EVENT)


def test_new_ids_and_run_times_are_normalised_but_content_is_not(
    nova_bed: Any, tmp_path: Path
) -> None:
    url = support.cell_url(nova_bed, "cell1")
    saved = savepoint.save(nova_bed, tmp_path / "saved")
    try:
        base = fingerprint.baseline(nova_bed)
        _act(url, "req-1")
        first = fingerprint.fingerprint(nova_bed, base, placement=False)
        assert fingerprint.differences(first, first) == []

        savepoint.restore(nova_bed, saved)
        base = fingerprint.baseline(nova_bed)
        uuid = support.query(url, "SELECT uuid FROM instances ORDER BY id LIMIT 1")[0].uuid
        support.execute(url, ACTION, u=uuid, r="burn")  # burns an id ...
        support.execute(url, "DELETE FROM instance_actions WHERE request_id = 'burn'")
        _act(url, "req-1")  # ... so the same rows get other ids and other times
        assert fingerprint.differences(first, fingerprint.fingerprint(nova_bed, base, False)) == []

        support.execute(
            url,
            "UPDATE instance_actions_events SET event = 'other' WHERE id = "
            "(SELECT MAX(id) FROM (SELECT id FROM instance_actions_events) e)",
        )
        changed = fingerprint.fingerprint(nova_bed, base, placement=False)
        assert fingerprint.differences(first, changed) == ["db.cell1.instance_actions_events"]
        assert "'other'" in fingerprint.report(first, changed)

        savepoint.restore(nova_bed, saved)  # back to the saved rows: only the run's tables differ
        restored = fingerprint.fingerprint(nova_bed, fingerprint.baseline(nova_bed), False)
        assert fingerprint.differences(first, restored) == [
            "db.cell1.instance_actions",
            "db.cell1.instance_actions_events",
        ]
    finally:
        savepoint.drop(saved)


def test_the_cli_is_really_killed_at_the_chosen_event(nova_bed: Any) -> None:
    command = ["run", "map_instances", "--config-file", str(nova_bed.config_path)]
    code, events = killpoint.count(command)
    assert code == 0 and len(events) > 20
    assert any(e.startswith("sql SELECT") for e in events)
    assert killpoint.run(command, kill_at=len(events) // 2) == killpoint.KILLED
    points = killpoint.spread(events, 20)
    assert len(points) == 20 and points == sorted(set(points)) and points[0] == 1
