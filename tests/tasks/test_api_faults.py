"""Nova's API and Cinder failing now and then cost a run nothing: the faults are retried.

The real nova-api and the real Cinder of the bed sit behind the test bed's
fault proxy (testbed/api_faults.py), which answers 500, or 503 with
Retry-After, to every 2nd request, resets every 2nd connection, or lets every
2nd request land and holds its answer past `service_timeout` (so the retried
write finds it done: a Cinder DELETE then meets 404, an os-services PUT or an
os-resetState is repeated). With the [audit] service retries on, host_fault
and volume_attachments in heal mode converge in one run with no failed
finding, and a fault-free heal run afterwards finds nothing left. Audit mode
under faults writes nothing. A service that always fails is a FAILURE report
naming it, with nothing written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import testbed
from nova_audit_ops.engine.report import Code
from testbed import api_faults
from testbed import cinder as cinder_bed
from testbed.api_faults import FAST_RETRIES, FAULTS, audit_section, injected
from testbed.fault_proxy import FaultProxy
from tests import support
from tests.tasks.test_faults import run_cli
from tests.tasks.test_host_fault import compute_hosts, instances, service, silence

pytestmark = pytest.mark.timeout(600)
NO_GRACE = {"grace_period": "0"}  # volume_attachments deletes on the first heal sighting


def statuses(report: dict[str, Any]) -> dict[str, str]:
    return {f["object_id"]: f["status"] for f in report["findings"]}


def assert_converged(report: dict[str, Any]) -> None:
    failed = [f"{f['problem']}: {f['action']}" for f in report["findings"]
              if f["status"] == "failed"]  # fmt: skip
    assert not failed and report["code"] != Code.FAILURE, failed


def assert_nothing_left(report: dict[str, Any]) -> None:
    assert not {f["status"] for f in report["findings"]} & {"fixed", "would_fix", "failed"}, report


def reset_actions(bed: Any, cell: str, uuids: list[str]) -> dict[str, int]:
    rows = support.query(
        support.cell_url(bed, cell),
        "SELECT instance_uuid, COUNT(*) AS n FROM instance_actions WHERE action = 'resetState' "
        "GROUP BY instance_uuid",
    )
    return {r.instance_uuid: int(r.n) for r in rows if r.instance_uuid in uuids}


def test_host_fault_converges_through_nova_api_faults(nova_bed: Any, tmp_path: Path) -> None:
    bed = nova_bed
    testbed.heartbeat(bed)  # only the hosts silenced below are failed by the wall clock
    hosts = [("cell1", h) for h in compute_hosts(bed)] + [
        ("cell2", h) for h in compute_hosts(bed, "cell2")
    ]
    with api_faults.started(bed, "nova") as (_, direct):
        (tmp_path / "clean").mkdir()
        clean = support.config_with(bed, tmp_path / "clean", nova=direct, audit=FAST_RETRIES)
        for fault, (cell, host) in zip(sorted(FAULTS), hosts, strict=False):
            silence(bed, host, cell)
            victims = sorted(instances(bed, host, cell))
            (tmp_path / fault).mkdir()
            with api_faults.behind_proxy(direct, **FAULTS[fault]) as (proxy, nova):
                config = support.config_with(
                    bed, tmp_path / fault, nova=nova, audit=audit_section(fault)
                )
                before = support.snapshot(bed)
                audit = run_cli(config, "host_fault", "--hosts", host)
                assert set(statuses(audit).values()) <= {"would_fix", "left"}, audit
                assert support.snapshot(bed) == before, "audit mode wrote something"
                heal = run_cli(config, "host_fault", "--hosts", host, "--mode", "heal")
                assert_converged(heal)
                assert statuses(heal)[host] == "fixed", (fault, heal)
                assert injected(proxy) > 0, fault
            assert service(bed, host, cell).forced_down
            assert all(state == ("error", None) for state in instances(bed, host, cell).values())
            actions = reset_actions(bed, cell, victims)
            assert set(actions) == set(victims), (fault, actions)
            # A reset whose answer was lost is read back, never repeated: one record each.
            assert set(actions.values()) == {1}, (fault, actions)
        done = ",".join(host for _, host in hosts[: len(FAULTS)])
        assert_nothing_left(run_cli(clean, "host_fault", "--hosts", done, "--mode", "heal"))


def test_volume_attachments_converge_through_cinder_faults(nova_bed: Any, tmp_path: Path) -> None:
    bed = nova_bed
    sections: dict[str, dict[str, str]] = {"audit.volume_attachments": NO_GRACE}
    with api_faults.started(bed, "cinder") as (cinder, direct):
        (tmp_path / "clean").mkdir()
        clean = support.config_with(
            bed, tmp_path / "clean", cinder=direct, audit=FAST_RETRIES, **sections
        )
        for fault in sorted(FAULTS):
            changes = cinder_bed.deleted_servers(bed, cinder, 1)
            changes += cinder_bed.unknown_servers(bed, cinder, 2)
            dangling = {c["attachment_id"] for c in changes}
            (tmp_path / fault).mkdir()
            with api_faults.behind_proxy(direct, **FAULTS[fault]) as (proxy, section):
                config = support.config_with(
                    bed, tmp_path / fault, cinder=section, audit=audit_section(fault), **sections
                )
                before = support.snapshot(bed), cinder_bed.attachments(cinder)
                audit = run_cli(config, "volume_attachments")
                assert statuses(audit) == dict.fromkeys(dangling, "would_fix"), (fault, audit)
                preflight = run_cli(config, "preflight")
                assert not [f for f in preflight["findings"] if "Cinder" in f["problem"]]
                assert (support.snapshot(bed), cinder_bed.attachments(cinder)) == before
                audit_faults = injected(proxy)
                assert audit_faults > 0, fault
                heal = run_cli(config, "volume_attachments", "--mode", "heal")
                assert_converged(heal)
                assert statuses(heal) == dict.fromkeys(dangling, "fixed"), (fault, heal)
                assert injected(proxy) > audit_faults, fault
                if fault == "timeout":  # a DELETE that landed, retried: 404 = done
                    assert "already gone" in {f["action"] for f in heal["findings"]}, heal
            assert set(before[1]) - set(cinder_bed.attachments(cinder)) == dangling
        assert_nothing_left(run_cli(clean, "volume_attachments", "--mode", "heal"))


# The proxy answers every request itself, so no service runs behind it: the port is closed.
ALWAYS = {
    "503": ({"fail_every": 1, "status": 503, "retry_after": 1}, "returned 503"),
    "reset": ({"reset_every": 1}, "cannot be reached"),
}
DEAD = {"nova": "http://127.0.0.1:9/v2.1", "cinder": "http://127.0.0.1:9/v3"}
NAMES = {"nova": "Nova", "cinder": "Cinder"}


@pytest.mark.parametrize("always", sorted(ALWAYS))
@pytest.mark.parametrize("section", sorted(DEAD))
def test_a_service_that_always_fails_is_a_failure_naming_it(
    nova_bed: Any, tmp_path: Path, section: str, always: str
) -> None:
    bed = nova_bed
    testbed.heartbeat(bed)
    host = compute_hosts(bed)[0]
    silence(bed, host)
    faults, words = ALWAYS[always]
    with FaultProxy(DEAD[section], error_format="openstack", **faults) as proxy:
        endpoint = {"auth_type": "admin_token", "endpoint": proxy.url, "token": "admin:admin"}
        audit = {**FAST_RETRIES, "service_retries": "1"}
        config = support.config_with(bed, tmp_path, audit=audit, **{section: endpoint})
        task = ("host_fault", "--hosts", host) if section == "nova" else ("volume_attachments",)
        before = support.snapshot(bed)
        report = run_cli(config, *task, "--mode", "heal")
        assert report["code"] == Code.FAILURE, report
        failed = [
            f"{f['problem']}: {f['action']}" for f in report["findings"] if f["status"] == "failed"
        ]
        assert failed and all(NAMES[section] in p and words in p for p in failed), failed
        assert support.snapshot(bed) == before
        assert proxy.requests >= 2 and proxy.requests == proxy.faults + proxy.resets
