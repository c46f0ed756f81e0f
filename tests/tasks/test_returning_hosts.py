"""host_fault and preflight on hosts that report again after being forced down.

Real MariaDB cell databases and the real nova-api of the test bed: the host
is forced down through Nova's API by host_fault itself, then "starts again"
(its heartbeat and report_count move on, as Nova's DB servicegroup driver
writes them), then is returned to service through the API.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest

from nova_audit_ops.engine.report import Code, Status
from nova_audit_ops.engine.state import MemoryStateStore
from nova_audit_ops.tasks import host_fault
from testbed import heartbeat, nova_api
from tests import support

pytestmark = pytest.mark.timeout(300)
NAIVE = "%Y-%m-%d %H:%M:%S"


def anchor(bed: Any) -> dt.datetime:
    return dt.datetime.fromisoformat(bed.anchor).replace(tzinfo=dt.timezone.utc)


def cell1(bed: Any) -> str:
    return support.cell_url(bed, "cell1")


def hosts(bed: Any) -> list[str]:
    rows = support.query(
        cell1(bed), "SELECT host FROM services WHERE `binary` = 'nova-compute' ORDER BY id"
    )
    return [r.host for r in rows]


def service(bed: Any, host: str) -> Any:
    return support.query(
        cell1(bed),
        "SELECT forced_down, disabled, disabled_reason, report_count FROM services "
        "WHERE host = :h AND `binary` = 'nova-compute'",
        h=host,
    )[0]


def report_in(bed: Any, host: str, at: dt.datetime, reports: int) -> None:
    """The host's nova-compute heartbeats at `at`, `reports` more times than before."""
    support.execute(
        cell1(bed),
        "UPDATE services SET last_seen_up = :at, report_count = report_count + :n "
        "WHERE host = :h AND `binary` = 'nova-compute'",
        at=at.strftime(NAIVE),
        n=reports,
        h=host,
    )


def claiming(bed: Any, host: str) -> list[str]:
    rows = support.query(
        cell1(bed),
        "SELECT uuid FROM instances WHERE host = :h AND deleted = 0 ORDER BY id",
        h=host,
    )
    return [r.uuid for r in rows]


def evacuate(bed: Any, instance: str, source: str, dest: str | None, status: str) -> None:
    """An evacuation migration of `instance` from `source`; `dest` set moves the instance."""
    support.execute(
        cell1(bed),
        "INSERT INTO migrations (created_at, uuid, instance_uuid, source_compute, "
        "dest_compute, source_node, dest_node, status, migration_type, hidden, deleted) "
        "VALUES (NOW(), :u, :i, :s, :d, :s, :d, :st, 'evacuation', 0, 0)",
        u=str(uuid.uuid4()),
        i=instance,
        s=source,
        d=dest or "unknown",
        st=status,
    )
    if dest:
        support.execute(
            cell1(bed),
            "UPDATE instances SET host = :d, node = :d WHERE uuid = :i",
            d=dest,
            i=instance,
        )


def run(bed: Any, config: str, at: dt.datetime, state: MemoryStateStore, **params: Any) -> Any:
    return support.run(
        bed, "host_fault", reference_time=at, config_path=config, state=state, **params
    )


def fence_and_return(bed: Any, config: str, state: MemoryStateStore) -> tuple[str, dt.datetime]:
    """host_fault forces a silent host down; then its nova-compute reports again.

    Returns the host and the moment it is seen reporting (30 s after the seed).
    """
    host = hosts(bed)[0]
    support.execute(
        cell1(bed),
        "UPDATE services SET last_seen_up = last_seen_up - INTERVAL 1 HOUR WHERE host = :h",
        h=host,
    )
    now = anchor(bed) + dt.timedelta(seconds=30)
    fenced = run(bed, config, now, state, mode="heal", hosts=[host], reset_instances=False)
    assert fenced.code == Code.OK, fenced.findings
    row = service(bed, host)
    assert row.forced_down and row.disabled
    assert row.disabled_reason.startswith("nova-audit host_fault")
    report_in(bed, host, now - dt.timedelta(seconds=5), 1)
    return host, now


def test_a_fenced_host_that_reports_again_is_reported_by_every_run(
    nova_bed: Any, config: str
) -> None:
    state = MemoryStateStore()
    host, now = fence_and_return(nova_bed, config, state)
    on_it = claiming(nova_bed, host)
    moved = on_it[0]
    evacuate(nova_bed, moved, host, hosts(nova_bed)[1], "completed")
    before = support.snapshot(nova_bed)

    report = run(nova_bed, config, now, state)
    assert report.code == Code.WARNING
    [finding] = report.findings
    assert finding.object_id == host and finding.status is Status.LEFT
    assert "reports again" in finding.problem and "disabled by nova-audit" in finding.problem
    assert "(nova-audit host_fault: no heartbeat since" in finding.problem  # since when silent
    assert f"{len(on_it) - 1} instance(s)" in finding.problem
    assert f"{moved} (completed, now on {hosts(nova_bed)[1]})" in finding.problem
    assert f"`nova-audit run host_fault --recovered-hosts {host} --mode heal`" in (
        finding.fix or ""
    )

    checks = support.run(nova_bed, "preflight", reference_time=now, cells=["cell1"])
    [returned] = [f for f in checks.findings if f.object_id == "Returned compute hosts"]
    assert host in returned.problem and returned.status is Status.LEFT
    assert f"--recovered-hosts {host}" in (returned.fix or "")
    assert support.snapshot(nova_bed) == before


def test_a_named_recovered_host_is_returned_to_service_through_the_api(
    nova_bed: Any, api: nova_api.NovaAPI, config: str
) -> None:
    state = MemoryStateStore()
    host, now = fence_and_return(nova_bed, config, state)
    before = support.snapshot(nova_bed)
    first = run(nova_bed, config, now, state, mode="heal", recovered_hosts=[host])
    [waiting] = first.findings
    assert waiting.status is Status.LEFT and "not yet" in waiting.action
    assert "in 600 s" in (waiting.fix or "")
    assert support.snapshot(nova_bed) == before

    later = now + dt.timedelta(seconds=620)
    heartbeat(nova_bed, at=later)  # the other hosts keep reporting too
    report_in(nova_bed, host, later - dt.timedelta(seconds=5), 62)
    healed = run(nova_bed, config, later, state, mode="heal", recovered_hosts=[host])
    assert healed.code == Code.OK, healed.findings
    [done] = healed.findings
    assert done.status is Status.FIXED and done.action.endswith(": done")
    row = service(nova_bed, host)
    assert (row.forced_down, row.disabled, row.disabled_reason) == (0, 0, None)
    [seen] = nova_api.get(api, f"/os-services?host={host}&binary=nova-compute")["services"]
    assert seen["forced_down"] is False and seen["status"] == "enabled"

    settled = support.snapshot(nova_bed)
    again = run(nova_bed, config, later, state, mode="heal", recovered_hosts=[host])
    assert again.code == Code.OK and again.findings == []
    assert support.snapshot(nova_bed) == settled


def test_a_gap_in_the_heartbeats_restarts_the_wait(nova_bed: Any, config: str) -> None:
    """700 s later with 2 more reports: it cannot have reported every 300 s, so it was silent."""
    state = MemoryStateStore()
    host, now = fence_and_return(nova_bed, config, state)
    run(nova_bed, config, now, state, mode="heal", recovered_hosts=[host])
    later = now + dt.timedelta(seconds=700)
    report_in(nova_bed, host, later - dt.timedelta(seconds=5), 2)
    report = run(nova_bed, config, later, state, mode="heal", recovered_hosts=[host])
    [waiting] = [f for f in report.findings if f.object_id == host]
    assert "reported for 0 s of the 600 s" in waiting.action
    assert service(nova_bed, host).forced_down


def test_evacuated_guests_that_may_still_run_there_block_the_return(
    nova_bed: Any, config: str
) -> None:
    state = MemoryStateStore()
    host, now = fence_and_return(nova_bed, config, state)
    moved, stuck = claiming(nova_bed, host)[:2]
    evacuate(nova_bed, moved, host, hosts(nova_bed)[1], "done")
    evacuate(nova_bed, stuck, host, None, "accepted")
    before = support.snapshot(nova_bed)
    report = run(
        nova_bed, config, now, state, mode="heal", recovered_hosts=[host], recovered_after=0
    )
    assert report.code == Code.FAILURE
    [refused] = report.findings
    assert refused.status is Status.MUST_NOT_FIX
    assert "may run twice" in refused.problem
    assert f"1 instance(s) ({stuck}) both on it and evacuated" in refused.problem
    assert f"restart nova-compute on {host}" in (refused.fix or "")
    assert support.snapshot(nova_bed) == before

    # nova-compute restarted: its start-up cleanup completes the evacuations; the stuck one
    # failed on its destination and stays here.
    support.execute(
        cell1(nova_bed), "UPDATE migrations SET status = 'completed' WHERE status = 'done'"
    )
    support.execute(
        cell1(nova_bed), "UPDATE migrations SET status = 'failed' WHERE status = 'accepted'"
    )
    healed = run(
        nova_bed, config, now, state, mode="heal", recovered_hosts=[host], recovered_after=0
    )
    assert healed.code == Code.OK, healed.findings
    assert not service(nova_bed, host).forced_down


def test_a_host_an_operator_disabled_stays_disabled(nova_bed: Any, config: str) -> None:
    host = hosts(nova_bed)[0]
    support.execute(
        cell1(nova_bed),
        "UPDATE services SET forced_down = 1, disabled = 1, disabled_reason = 'disk swap' "
        "WHERE host = :h AND `binary` = 'nova-compute'",
        h=host,
    )
    now = anchor(nova_bed) + dt.timedelta(seconds=30)
    state = MemoryStateStore()
    audit = run(nova_bed, config, now, state, recovered_hosts=[host], recovered_after=0)
    [would] = audit.findings
    assert would.status is Status.WOULD_FIX and "stays disabled" in would.action
    assert "disabled by an operator (disk swap)" in would.problem
    report = run(
        nova_bed, config, now, state, mode="heal", recovered_hosts=[host], recovered_after=0
    )
    [done] = report.findings
    assert done.status is Status.FIXED and "--enable" in (done.fix or "")
    row = service(nova_bed, host)
    assert (row.forced_down, row.disabled, row.disabled_reason) == (0, 1, "disk swap")


@pytest.mark.parametrize(
    ("failed", "recovered", "words"),
    [
        pytest.param(True, "{host}", "named both", id="named failed and recovered"),
        pytest.param(False, "no-such-host", "unknown host", id="unknown recovered host"),
    ],
)
def test_contradicting_or_unknown_names_are_refused_before_any_write(
    nova_bed: Any, config: str, failed: bool, recovered: str, words: str
) -> None:
    host = hosts(nova_bed)[0]
    support.execute(cell1(nova_bed), "UPDATE services SET forced_down = 1 WHERE host = :h", h=host)
    before = support.snapshot(nova_bed)
    report = run(
        nova_bed,
        config,
        anchor(nova_bed) + dt.timedelta(seconds=30),
        MemoryStateStore(),
        mode="heal",
        hosts=[host] if failed else [],
        recovered_hosts=[recovered.format(host=host)],
        recovered_after=0,
    )
    assert report.code == Code.FAILURE
    assert report.findings and all(words in f.problem for f in report.findings), report.findings
    assert support.snapshot(nova_bed) == before
    assert service(nova_bed, host).forced_down


def test_a_named_recovered_host_that_is_silent_is_refused(nova_bed: Any, config: str) -> None:
    state = MemoryStateStore()
    host, now = fence_and_return(nova_bed, config, state)
    report = run(nova_bed, config, now + dt.timedelta(seconds=900), state, mode="heal",
                 recovered_hosts=[host])  # fmt: skip
    [refused] = [f for f in report.findings if f.object_id == host]
    assert refused.status is Status.MUST_NOT_FIX and "has not reported for" in refused.problem
    assert service(nova_bed, host).forced_down


def test_fixes_carry_the_run_params_that_decide_what_is_found(nova_bed: Any, config: str) -> None:
    """`--down-after` and `--recovered-after` go into the printed command; host names do not."""
    state = MemoryStateStore()
    host, now = fence_and_return(nova_bed, config, state)
    other = hosts(nova_bed)[1]
    report = run(nova_bed, config, now, state, mode="heal", recovered_hosts=[host],
                 hosts=[other], down_after=60, recovered_after=120)  # fmt: skip
    [waiting] = [f for f in report.findings if f.object_id == host]
    assert (
        f"`nova-audit run host_fault --down-after 60 --recovered-after 120 --recovered-hosts "
        f"{host} --mode heal`" in (waiting.fix or "")
    ), waiting.fix
    assert "--hosts" not in (waiting.fix or "")


def test_the_disabled_reason_host_fault_writes_marks_it_as_nova_audits() -> None:
    from nova_audit_ops.nova.returning_hosts import NOVA_AUDIT_REASON

    assert host_fault.DISABLED_REASON.startswith(NOVA_AUDIT_REASON)


def test_the_one_shot_cli_refuses_a_host_still_reporting(nova_bed: Any, config: str) -> None:
    """The external monitor's other entry point: the CLI judges heartbeats by the wall clock."""
    host = hosts(nova_bed)[0]
    support.execute(
        cell1(nova_bed),
        "UPDATE services SET last_seen_up = UTC_TIMESTAMP() WHERE host = :h",
        h=host,
    )
    before = support.snapshot(nova_bed)
    code, data = support.cli_json(
        "run", "host_fault", "--config-file", config, "--hosts", host, "--mode", "heal"
    )
    assert code == Code.FAILURE == data["code"]
    [refused] = [f for f in data["findings"] if f["object_id"] == host]
    assert refused["status"] == Status.MUST_NOT_FIX.value and "reported" in refused["problem"]
    assert support.snapshot(nova_bed) == before


def test_the_one_shot_cli_returns_a_recovered_host(nova_bed: Any, config: str) -> None:
    host = hosts(nova_bed)[0]
    support.execute(
        cell1(nova_bed),
        "UPDATE services SET last_seen_up = UTC_TIMESTAMP(), forced_down = 1, disabled = 1, "
        "disabled_reason = 'nova-audit host_fault: no heartbeat since 2026-01-01T00:00:00' "
        "WHERE host = :h",
        h=host,
    )
    args = ("run", "host_fault", "--config-file", config, "--recovered-hosts", host)
    code, data = support.cli_json(*args, "--recovered-after", "0", "--mode", "heal")
    assert code == data["code"] and code < Code.FAILURE, data
    [done] = [f for f in data["findings"] if f["object_id"] == host]
    assert done["status"] == Status.FIXED.value, data
    row = service(nova_bed, host)
    assert (row.forced_down, row.disabled) == (0, 0)
