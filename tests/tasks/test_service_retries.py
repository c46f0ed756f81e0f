"""A Placement that fails now and then no longer costs a run anything: the faults are retried.

Placement sits behind the test bed's fault proxy (testbed/fault_proxy.py), a
real HTTP proxy answering 500, or 503 with Retry-After, to every 3rd request
(or resetting every 3rd connection).
With the [audit] service retries on, heal_allocations and sync_aggregates in
heal mode converge in one run with no failed finding: a fault-free heal run
afterwards finds nothing left and changes nothing. Audit mode writes nothing.
A Placement that always fails still ends in a FAILURE report naming Placement.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import testbed
from nova_audit_ops.engine.report import Code
from testbed.fault_proxy import FaultProxy
from tests import support
from tests.tasks.test_faults import DRIFT, failed_problems, run_cli

TASKS = ("heal_allocations", "sync_aggregates")
# Test-friendly budget: no doubling pause, Retry-After honoured up to 1 s.
FAST_RETRIES = {
    "service_retries": "3",
    "service_retry_delay_ms": "0",
    "service_retry_max_delay": "1",
}


def state(bed: Any) -> tuple[Any, Any]:
    """The bed's database rows and Placement allocations and aggregates."""
    return support.snapshot(bed), testbed.snapshot_placement(bed)


def assert_nothing_left(config: str) -> None:
    """A fault-free heal run of each task finds nothing to repair and nothing failing."""
    for task in TASKS:
        report = run_cli(config, task, "--mode", "heal")
        statuses = {f["status"] for f in report["findings"]}
        assert not statuses & {"fixed", "would_fix", "failed"}, (task, report)


FAULTS = {
    "500": {"fail_every": 3, "status": 500},
    "503-retry-after": {"fail_every": 3, "status": 503, "retry_after": 1},
    "reset": {"reset_every": 3},  # retried by keystoneauth1's connect_retries
    # Held past service_timeout: a read timeout, retried by keystoneauth1, while the
    # first attempt still lands (a repeated write then meets 409 and re-reads).
    "timeout": {"delay_every": 5, "delay": 2.5},
}


def injected(proxy: FaultProxy) -> int:
    return proxy.faults + proxy.resets + proxy.delays


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_heal_converges_in_one_run_through_transient_placement_faults(
    nova_bed_placement: Any, tmp_path: Path, fault: str
) -> None:
    bed = nova_bed_placement
    for scenario, count in DRIFT.items():
        testbed.drift(bed, scenario, count)
    (tmp_path / "clean").mkdir()
    clean = support.config_with(bed, tmp_path / "clean", audit=FAST_RETRIES)
    with FaultProxy(bed.placement_url, **FAULTS[fault]) as proxy:  # type: ignore[arg-type]
        placement = {"endpoint": proxy.url}
        audit = {**FAST_RETRIES, "service_timeout": "1"} if fault == "timeout" else FAST_RETRIES
        config = support.config_with(bed, tmp_path, placement=placement, audit=audit)
        before = state(bed)
        for task in TASKS:
            report = run_cli(config, task)
            assert not failed_problems(report) and report["code"] != Code.FAILURE, report
        assert state(bed) == before, "audit mode wrote something"
        audit_faults = injected(proxy)
        for task in TASKS:
            report = run_cli(config, task, "--mode", "heal")
            assert not failed_problems(report) and report["code"] != Code.FAILURE, report
            assert any(f["status"] == "fixed" for f in report["findings"]), report
        assert audit_faults > 0 and injected(proxy) > audit_faults
    healed = state(bed)
    assert healed != before
    assert_nothing_left(clean)
    assert state(bed) == healed


def test_a_placement_that_stays_down_is_a_failure_naming_it(
    nova_bed_placement: Any, tmp_path: Path
) -> None:
    """Every request 503 + Retry-After: the budget is spent, each cell fails, exit 2."""
    bed = nova_bed_placement
    testbed.drift(bed, "missing_allocations", 2)
    with FaultProxy(bed.placement_url, fail_every=1, status=503, retry_after=1) as proxy:
        audit = {**FAST_RETRIES, "service_retries": "1"}
        config = support.config_with(bed, tmp_path, placement={"endpoint": proxy.url}, audit=audit)
        before = state(bed)
        for task in TASKS:
            report = run_cli(config, task, "--mode", "heal")
            assert report["code"] == Code.FAILURE and report["cells_failed"], report
            problems = failed_problems(report)
            assert problems and all("Placement returned 503" in p for p in problems), problems
        assert state(bed) == before
        assert proxy.faults >= 2 * len(TASKS)  # every failing request was tried twice
