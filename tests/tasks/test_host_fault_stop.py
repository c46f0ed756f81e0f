"""host_fault with `instance_state = stopped`, against the real databases and nova-api."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import pytest

from nova_audit_ops.engine.report import Code, Status
from nova_audit_ops.settings.errors import ConfigError
from testbed import nova_api
from testbed.db_faults import Rows, Target, inject, lock_wait_knobs
from tests import support
from tests.tasks.test_host_fault import compute_hosts, run, service, silence

pytestmark = pytest.mark.timeout(300)
REQUEST_ID = re.compile(r"^req-[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}$")


def _rows(bed: Any, host: str) -> dict[str, Any]:
    return {
        r.uuid: r
        for r in support.query(
            support.cell_url(bed, "cell1"),
            "SELECT uuid, vm_state, power_state, task_state, progress, updated_at "
            "FROM instances WHERE host = :h AND deleted = 0",
            h=host,
        )
    }


def _stop_actions(bed: Any) -> list[Any]:
    return support.query(
        support.cell_url(bed, "cell1"),
        "SELECT a.instance_uuid, a.request_id, a.user_id, a.project_id, a.start_time, "
        "a.finish_time, a.message, a.updated_at, e.event, e.result, e.host, e.start_time "
        "AS event_start, e.finish_time AS event_finish, e.traceback "
        "FROM instance_actions a JOIN instance_actions_events e ON e.action_id = a.id "
        "WHERE a.action = 'stop' ORDER BY a.id",
    )


def _vary_states(bed: Any, host: str) -> dict[str, str]:
    """Give the host's instances every state the knob must tell apart; uuid -> role."""
    cell1 = support.cell_url(bed, "cell1")
    [node] = support.query(cell1, "SELECT DISTINCT node FROM instances WHERE host = :h", h=host)
    support.execute(  # the cell's other instances move there: 3 per host are too few
        cell1,
        "UPDATE instances SET host = :h, node = :n WHERE host IS NOT NULL AND deleted = 0",
        h=host,
        n=node.node,
    )
    uuids = sorted(_rows(bed, host))
    roles = ["paused", "busy", "resized", "error", "soft-delete", "stopped", "building"]
    assert len(uuids) > len(roles), "the seeded host should hold enough instances"
    states = {
        "paused": ("paused", None),
        "busy": ("active", "rebooting"),
        "resized": ("resized", None),
        "error": ("error", None),
        "soft-delete": ("soft-delete", None),
        "stopped": ("stopped", None),
        "building": ("building", "spawning"),
    }
    for uuid, role in zip(uuids, roles, strict=False):
        vm_state, task = states[role]
        support.execute(
            cell1,
            "UPDATE instances SET vm_state = :v, task_state = :t WHERE uuid = :u",
            v=vm_state,
            t=task,
            u=uuid,
        )
    return {u: (roles[i] if i < len(roles) else "active") for i, u in enumerate(uuids)}


def test_heal_stops_running_instances_with_nova_actions(
    nova_bed: Any, api: nova_api.NovaAPI, config: str
) -> None:
    failed = compute_hosts(nova_bed)[0]
    roles = _vary_states(nova_bed, failed)
    silence(nova_bed, failed)
    before = _rows(nova_bed, failed)
    started = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None, microsecond=0)
    report = run(nova_bed, config, mode="heal", hosts=[failed], instance_state="stopped")
    running = {u for u, role in roles.items() if role in ("active", "paused", "busy")}
    assert {f.object_id for f in report.findings if f.status is Status.FIXED} == running | {failed}
    [stuck] = [f for f in report.findings if f.status is Status.LEFT]
    assert roles[stuck.object_id] == "building" and "--state error" in (stuck.fix or "")
    assert service(nova_bed, failed).forced_down, "the host is still forced down through the API"
    after = _rows(nova_bed, failed)
    for uuid, row in after.items():
        if uuid in running:
            assert (row.vm_state, row.power_state, row.task_state, row.progress) == (
                "stopped",
                4,
                None,
                0,
            ), roles[uuid]
            assert row.updated_at >= started
        else:
            assert row == before[uuid], f"{roles[uuid]} instance must not be touched"
    actions = _stop_actions(nova_bed)
    assert sorted(a.instance_uuid for a in actions) == sorted(running), "one action each"
    assert len({a.request_id for a in actions}) == 1, "one request id per host's transaction"
    for a in actions:
        assert REQUEST_ID.match(a.request_id)
        assert (a.user_id, a.project_id, a.finish_time, a.message) == (None, None, None, None)
        assert (a.event, a.result, a.host, a.traceback) == (
            "compute_stop_instance",
            "Success",
            failed,
            None,
        )
        assert a.start_time >= started and a.event_finish >= a.event_start >= a.start_time
    # Nova's own API reads the rows back (instance actions and their events).
    uuid = next(iter(running))
    listed = nova_api.get(api, f"/servers/{uuid}/os-instance-actions", "2.62")["instanceActions"]
    assert [x["action"] for x in listed if x["action"] == "stop"] == ["stop"]
    shown = nova_api.get(
        api, f"/servers/{uuid}/os-instance-actions/{actions[0].request_id}", "2.62"
    )["instanceAction"]
    assert [(e["event"], e["result"], e["host"]) for e in shown["events"]] == [
        ("compute_stop_instance", "Success", failed)
    ]
    # A rerun (also after an interruption) finds nothing left to stop.
    snap = support.snapshot(nova_bed)
    again = run(nova_bed, config, mode="heal", hosts=[failed], instance_state="stopped")
    assert not [f for f in again.findings if f.status is Status.FIXED]
    assert support.snapshot(nova_bed) == snap


def test_audit_with_stopped_writes_nothing(nova_bed: Any, config: str) -> None:
    failed = compute_hosts(nova_bed)[0]
    silence(nova_bed, failed)
    before = support.snapshot(nova_bed)
    report = run(nova_bed, config, hosts=[failed], instance_state="stopped")
    assert report.code == Code.WARNING
    would = [f for f in report.findings if f.kind == "instance"]
    assert would and all(f.status is Status.WOULD_FIX for f in would)
    assert all(f.action == "would stop it" for f in would)
    assert support.snapshot(nova_bed) == before


def test_a_failed_transaction_leaves_the_host_as_it_was(nova_bed: Any, config: str) -> None:
    """The last insert of the host's transaction fails: nothing of it stays."""
    failed = compute_hosts(nova_bed)[0]
    silence(nova_bed, failed)
    cell1 = support.cell_url(nova_bed, "cell1")
    support.execute(
        cell1,
        "CREATE TRIGGER no_stop_events BEFORE INSERT ON instance_actions_events FOR EACH ROW "
        "SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'refused by the test'",
    )
    before = _rows(nova_bed, failed)
    try:
        report = run(nova_bed, config, mode="heal", hosts=[failed], instance_state="stopped")
    finally:
        support.execute(cell1, "DROP TRIGGER no_stop_events")
    assert report.code == Code.FAILURE and report.cells_failed == ["cell1"]
    assert _rows(nova_bed, failed) == before
    assert not _stop_actions(nova_bed)
    done = run(nova_bed, config, mode="heal", hosts=[failed], instance_state="stopped")
    assert done.code == Code.OK, done.findings
    assert {r.vm_state for r in _rows(nova_bed, failed).values()} == {"stopped"}


def test_fix_commands_repeat_the_instance_state(nova_bed: Any, config: str) -> None:
    failed = compute_hosts(nova_bed)[0]
    silence(nova_bed, failed)
    report = run(nova_bed, config, instance_state="stopped")
    [finding] = report.findings
    assert "--instance-state stopped" in (finding.fix or "")
    plain = run(nova_bed, config)
    assert "--instance-state" not in (plain.findings[0].fix or "")


def test_cli_option_and_bad_values(nova_bed: Any, config: str, tmp_path: Path) -> None:
    failed = compute_hosts(nova_bed)[0]
    silence(nova_bed, failed)
    code, data = support.cli_json(
        "run", "host_fault", "--config-file", config, "--hosts", failed,
        "--instance-state", "stopped",
    )  # fmt: skip
    assert code == 1 and {f["action"] for f in data["findings"] if f["kind"] == "instance"} == {
        "would stop it"
    }
    with pytest.raises(ConfigError, match=r"instance_state.*error, stopped"):
        support.run(nova_bed, "host_fault", instance_state="shutoff")


def test_a_deadlocked_transaction_is_redone_whole(
    nova_bed: Any, api: nova_api.NovaAPI, tmp_path: Path
) -> None:
    """The host's transaction is a deadlock victim: retried, each instance stopped once."""
    failed = compute_hosts(nova_bed)[0]
    silence(nova_bed, failed)
    cell1 = support.cell_url(nova_bed, "cell1")
    ids = [
        r.id
        for r in support.query(
            cell1, "SELECT id FROM instances WHERE host = :h AND deleted = 0 ORDER BY id", h=failed
        )
    ]
    assert len(ids) >= 2
    target = Target(
        Rows(cell1, "instances", f"id = {ids[-1]}"), Rows(cell1, "instances", f"id = {ids[0]}")
    )
    config = support.config_with(
        nova_bed, tmp_path, nova=nova_api.config_section(api), audit=lock_wait_knobs(10, 2)
    )
    with inject("deadlock", target) as fault:
        report = run(nova_bed, config, mode="heal", hosts=[failed], instance_state="stopped")
    assert fault.deadlocks == 1 and fault.victim == "task", "the fault must hit the transaction"
    assert report.code == Code.OK, report.findings
    assert sorted(a.instance_uuid for a in _stop_actions(nova_bed)) == sorted(
        _rows(nova_bed, failed)
    )
    assert {r.vm_state for r in _rows(nova_bed, failed).values()} == {"stopped"}
