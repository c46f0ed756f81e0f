"""Every task that uses Placement survives a Placement that fails now and then.

Placement sits behind the test bed's fault proxy (testbed/fault_proxy.py), a
real HTTP proxy that answers 500 to every Nth request; the tasks run through
the CLI as an operator runs them. A service's error is never a crash: the run
ends with 0, 1 or 2, prints its report, and the failures it reports name
Placement. Audit mode writes nothing, faults or not.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import testbed
from nova_audit_ops.engine.report import Code
from testbed.fault_proxy import FaultProxy
from tests import support

PLACEMENT_TASKS = ("heal_allocations", "sync_aggregates", "orphaned_allocations", "preflight")
HEALING_TASKS = PLACEMENT_TASKS[:3]  # preflight only reports
DRIFT = {"missing_allocations": 3, "wrong_user_allocations": 2, "missing_aggregates": 2}


def run_cli(config: str, task: str, *options: str) -> dict[str, Any]:
    """One CLI run; its exit code must be a verdict and its report must be printed."""
    result = support.cli("run", task, "--config-file", config, "--json", *options)
    assert result.returncode in (Code.OK, Code.WARNING, Code.FAILURE), (
        f"{task} {options}: exit {result.returncode}\n{result.stderr}"
    )
    assert "Traceback" not in result.stderr, result.stderr
    report: dict[str, Any] = json.loads(result.stdout)
    assert report["code"] == result.returncode and report["task"] == task
    return report


def failed_problems(report: dict[str, Any]) -> list[str]:
    return [f["problem"] for f in report["findings"] if f["status"] == "failed"]


def check_run(proxy: FaultProxy, config: str, task: str, *options: str) -> dict[str, Any]:
    """Run `task`; when the proxy broke one of its requests, say so through Placement."""
    faults_before = proxy.faults
    report = run_cli(config, task, *options)
    problems = failed_problems(report)
    if proxy.faults == faults_before:
        return report
    if report["code"] == Code.FAILURE:
        assert problems, report
    for problem in problems:
        assert "Placement" in problem, (task, options, problems)
    return report


@pytest.mark.parametrize("fail_every", [3, 7])
def test_placement_errors_are_failed_findings_never_crashes(
    nova_bed_placement: Any, tmp_path: Path, fail_every: int
) -> None:
    bed = nova_bed_placement
    for scenario, count in DRIFT.items():
        testbed.drift(bed, scenario, count)
    testbed.drift(bed, "orphan_allocations", 2)
    with FaultProxy(bed.placement_url, fail_every=fail_every) as proxy:
        config = support.config_with(bed, tmp_path, placement={"endpoint": proxy.url})
        before = support.snapshot(bed), testbed.snapshot_placement(bed)
        codes = [check_run(proxy, config, task)["code"] for task in PLACEMENT_TASKS]
        assert (support.snapshot(bed), testbed.snapshot_placement(bed)) == before
        for task in HEALING_TASKS:
            codes.append(check_run(proxy, config, task, "--mode", "heal")["code"])
        assert proxy.faults > 0 and proxy.requests > fail_every
    assert set(codes) <= {Code.OK, Code.WARNING, Code.FAILURE}


def test_a_placement_that_always_fails_fails_every_cell_by_name(
    nova_bed_placement: Any, tmp_path: Path
) -> None:
    """The limit case: every request answered 500. Still no crash, and nothing written."""
    bed = nova_bed_placement
    testbed.drift(bed, "missing_allocations", 2)
    with FaultProxy(bed.placement_url, fail_every=1) as proxy:
        config = support.config_with(bed, tmp_path, placement={"endpoint": proxy.url})
        before = support.snapshot(bed), testbed.snapshot_placement(bed)
        for task in HEALING_TASKS:
            report = run_cli(config, task, "--mode", "heal")
            assert report["code"] == Code.FAILURE and report["cells_failed"], report
            for problem in failed_problems(report):
                assert "Placement returned 500" in problem, problem
        assert (support.snapshot(bed), testbed.snapshot_placement(bed)) == before


def test_reset_connections_are_failed_findings_never_crashes(
    nova_bed_placement: Any, tmp_path: Path
) -> None:
    """Every other connection reset (no retries): 'Placement cannot be reached', exit 2."""
    bed = nova_bed_placement
    with FaultProxy(bed.placement_url, reset_every=2) as proxy:
        placement = {"endpoint": proxy.url, "connect_retries": "0"}
        config = support.config_with(bed, tmp_path, placement=placement)
        for task in ("heal_allocations", "orphaned_allocations"):
            report = run_cli(config, task)
            assert report["code"] == Code.FAILURE and report["cells_failed"], report
            for problem in failed_problems(report):
                assert "Placement cannot be reached (ConnectFailure)" in problem, problem
        assert proxy.resets > 0
