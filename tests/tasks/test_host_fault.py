"""host_fault against real Nova databases and the real nova-api of the test bed."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from nova_audit_ops.engine.report import Code, Status
from nova_audit_ops.settings.errors import ConfigError
from testbed import nova_api
from tests import support

pytestmark = pytest.mark.timeout(300)


def compute_hosts(bed: Any, cell: str = "cell1") -> list[str]:
    return [
        r.host
        for r in support.query(
            support.cell_url(bed, cell),
            "SELECT host FROM services WHERE `binary` = 'nova-compute' ORDER BY id",
        )
    ]


def silence(bed: Any, host: str, cell: str = "cell1") -> None:
    support.execute(
        support.cell_url(bed, cell),
        "UPDATE services SET last_seen_up = last_seen_up - INTERVAL 1 HOUR WHERE host = :h",
        h=host,
    )


def soon_after_seed(bed: Any) -> dt.datetime:
    return dt.datetime.fromisoformat(bed.anchor).replace(tzinfo=dt.timezone.utc) + dt.timedelta(
        seconds=30
    )


def run(bed: Any, config: str, **params: Any) -> Any:
    return support.run(
        bed, "host_fault", reference_time=soon_after_seed(bed), config_path=config, **params
    )


def instances(bed: Any, host: str, cell: str = "cell1") -> dict[str, tuple[str, str | None]]:
    rows = support.query(
        support.cell_url(bed, cell),
        "SELECT uuid, vm_state, task_state FROM instances WHERE host = :h AND deleted = 0",
        h=host,
    )
    return {r.uuid: (r.vm_state, r.task_state) for r in rows}


def service(bed: Any, host: str, cell: str = "cell1") -> Any:
    return support.query(
        support.cell_url(bed, cell),
        "SELECT forced_down, disabled, disabled_reason FROM services "
        "WHERE host = :h AND `binary` = 'nova-compute'",
        h=host,
    )[0]


def test_healthy_cloud_reports_nothing(nova_bed: Any, config: str) -> None:
    report = run(nova_bed, config, mode="heal")
    assert report.code == Code.OK, report.findings
    assert report.counts.examined == len(compute_hosts(nova_bed)) + len(
        compute_hosts(nova_bed, "cell2")
    )


def test_audit_reports_silent_hosts_and_writes_nothing(nova_bed: Any, config: str) -> None:
    failed = compute_hosts(nova_bed)[0]
    silence(nova_bed, failed)
    before = support.snapshot(nova_bed)
    report = run(nova_bed, config)
    assert report.code == Code.WARNING
    [finding] = report.findings
    assert finding.object_id == failed and finding.status is Status.LEFT
    assert f"--hosts {failed}" in (finding.fix or "")
    named = run(nova_bed, config, hosts=[failed])
    assert {f.status for f in named.findings} == {Status.WOULD_FIX}
    assert support.snapshot(nova_bed) == before


def test_heal_acts_only_on_named_hosts(nova_bed: Any, config: str) -> None:
    failed, other = compute_hosts(nova_bed)[:2]
    silence(nova_bed, failed)
    silence(nova_bed, other)
    report = run(nova_bed, config, mode="heal")
    assert {f.status for f in report.findings} == {Status.LEFT}
    assert not service(nova_bed, failed).forced_down and not service(nova_bed, other).forced_down


def test_heal_forces_down_and_resets_instances_through_the_api(
    nova_bed: Any, api: nova_api.NovaAPI, config: str
) -> None:
    failed = compute_hosts(nova_bed)[0]
    cell1 = support.cell_url(nova_bed, "cell1")
    victims = instances(nova_bed, failed)
    assert victims, "the seeded host should hold instances"
    stopped, busy = sorted(victims)[:2]
    support.execute(cell1, "UPDATE instances SET vm_state = 'stopped' WHERE uuid = :u", u=stopped)
    support.execute(cell1, "UPDATE instances SET task_state = 'rebooting' WHERE uuid = :u", u=busy)
    silence(nova_bed, failed)
    report = run(nova_bed, config, mode="heal", hosts=[failed])
    assert report.code == Code.OK, report.findings
    row = service(nova_bed, failed)
    assert row.forced_down and row.disabled and "host_fault" in row.disabled_reason
    after = instances(nova_bed, failed)
    assert after[stopped] == ("stopped", None)
    assert after[busy] == ("error", None)
    assert all(after[u] == ("error", None) for u in victims if u != stopped)
    actions = support.query(
        cell1,
        "SELECT instance_uuid FROM instance_actions WHERE action = 'resetState'",
    )
    assert {a.instance_uuid for a in actions} == set(victims) - {stopped}
    services = nova_api.get(api, f"/os-services?host={failed}&binary=nova-compute")["services"]
    assert services[0]["forced_down"] is True and services[0]["state"] == "down"
    again = run(nova_bed, config, mode="heal", hosts=[failed])
    assert again.code == Code.OK and again.counts.drifted == 0


def test_interrupted_heal_is_completed_by_the_next_run(nova_bed: Any, config: str) -> None:
    """Killed after the force-down: the rerun resets the instances it left."""
    failed = compute_hosts(nova_bed)[0]
    silence(nova_bed, failed)
    support.execute(
        support.cell_url(nova_bed, "cell1"),
        "UPDATE services SET forced_down = 1 WHERE host = :h",
        h=failed,
    )
    report = run(nova_bed, config, mode="heal", hosts=[failed])
    assert report.code == Code.OK
    assert {f.kind for f in report.findings} == {"instance"}
    assert all(state == ("error", None) for state in instances(nova_bed, failed).values())


def test_a_host_that_still_reports_is_never_forced_down(nova_bed: Any, config: str) -> None:
    alive = compute_hosts(nova_bed)[0]
    before = support.snapshot(nova_bed)
    report = run(nova_bed, config, mode="heal", hosts=[alive])
    assert report.code == Code.FAILURE
    [finding] = report.findings
    assert finding.status is Status.MUST_NOT_FIX and alive in finding.problem
    assert support.snapshot(nova_bed) == before


def test_unknown_host_is_refused_before_any_write(nova_bed: Any, config: str) -> None:
    failed = compute_hosts(nova_bed)[0]
    silence(nova_bed, failed)
    before = support.snapshot(nova_bed)
    report = run(nova_bed, config, mode="heal", hosts=[failed, "no-such-host"])
    assert report.code == Code.FAILURE
    assert all("no-such-host" in f.problem for f in report.findings)
    assert support.snapshot(nova_bed) == before


def test_heal_without_a_nova_section_is_a_clear_error(nova_bed: Any) -> None:
    failed = compute_hosts(nova_bed)[0]
    silence(nova_bed, failed)
    report = support.run(
        nova_bed,
        "host_fault",
        reference_time=soon_after_seed(nova_bed),
        mode="heal",
        hosts=[failed],
    )
    assert report.code == Code.FAILURE
    assert any("[nova]" in f.problem for f in report.findings)
    assert not service(nova_bed, failed).forced_down


def test_unreachable_nova_api_fails_the_cell_and_changes_nothing(
    nova_bed: Any, tmp_path: Path
) -> None:
    config = support.config_with(
        nova_bed,
        tmp_path,
        nova={
            "auth_type": "admin_token",
            "endpoint": "http://127.0.0.1:9/v2.1",
            "token": "a:a",
            "connect_retries": "0",
        },
    )
    failed = compute_hosts(nova_bed)[0]
    silence(nova_bed, failed)
    before = support.snapshot(nova_bed)
    report = run(nova_bed, config, mode="heal", hosts=[failed])
    assert report.code == Code.FAILURE
    assert report.cells_failed == ["cell1"]
    assert "Nova's API cannot be reached" in report.findings[0].problem
    assert support.snapshot(nova_bed) == before


def test_cli_option_is_named_like_the_param(nova_bed: Any, config: str) -> None:
    failed = compute_hosts(nova_bed)[0]
    code, data = support.cli_json("run", "host_fault", "--config-file", config, "--hosts", failed)
    assert data["task"] == "host_fault" and code == data["code"]


def test_bad_down_after_is_refused(nova_bed: Any) -> None:
    with pytest.raises(ConfigError, match="down_after"):
        support.run(nova_bed, "host_fault", down_after=0)


def test_a_forced_down_host_that_reports_again_is_left_alone(nova_bed: Any, config: str) -> None:
    """The host came back after an operator forced it down: its guests may run again."""
    host = compute_hosts(nova_bed)[0]
    support.execute(
        support.cell_url(nova_bed, "cell1"),
        "UPDATE services SET forced_down = 1 WHERE host = :h",
        h=host,
    )
    before = instances(nova_bed, host)
    report = run(nova_bed, config, mode="heal", hosts=[host])
    assert report.code == Code.FAILURE
    assert [f.status for f in report.findings] == [Status.MUST_NOT_FIX]
    assert instances(nova_bed, host) == before
