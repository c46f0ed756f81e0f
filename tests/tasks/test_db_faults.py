"""The DB-writing tasks under database faults made by MariaDB itself, on the real bed.

A second session (testbed/db_faults.py) locks the rows a task's write batch
needs, deadlocks with the task's transaction, or KILLs its connection while it
waits; where each task is hit is in testbed/db_fault_cases.py. A lock held
past the task's budget fails exactly that cell, by name, with the fix, and the
other cells heal; a long lock wait never keeps a run past its deadline; audit
mode writes nothing whatever the faults. A lock released in time, a deadlock
and a KILL mid-batch are retried: the run converges at once, to exactly the
state an undisturbed run leaves (testbed/fingerprint.py), nothing written twice.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from nova_audit_ops.engine.report import Code, Report, Status
from testbed import fingerprint, savepoint
from testbed.db_fault_cases import CASES, Case
from testbed.db_faults import Fault, inject, lock_wait_knobs
from tests import support

TASKS = sorted(CASES)
BLOCKED = "cell1"  # the first compute cell: the cells after it must still heal
SHORT = lock_wait_knobs(1, 1)  # one retry of a 1 s lock wait
# heal_instance_mappings reports a mapping under the cell its instance is in: the
# blocked walk of cell1's mappings leaves drift of cell2's instances.
RELEASED_AFTER = 1.5  # seconds a lock_released fault holds its rows (the task waits 5)
BUDGET = 6  # seconds: a heal run's time budget under a lock held for good
REPORTED_IN = {"heal_instance_mappings": "cell2"}


def heal(bed: Any, case: Case, config: str, **options: Any) -> Report:
    return support.run(bed, case.task, config_path=config, mode="heal", **case.params, **options)


def audit(bed: Any, case: Case, config: str | None = None) -> Report:
    return support.run(bed, case.task, config_path=config, mode="audit", **case.params)


def to_do(report: Report) -> dict[str, set[tuple[str, str]]]:
    """Per cell, what an audit run would still change."""
    found: dict[str, set[tuple[str, str]]] = {}
    for finding in report.findings:
        if finding.status is Status.WOULD_FIX:
            found.setdefault(finding.cell or "", set()).add((finding.kind, finding.object_id))
    return found


def fixed(report: Report) -> set[tuple[str | None, str, str]]:
    return {(f.cell, f.kind, f.object_id) for f in report.findings if f.status is Status.FIXED}


def failed(report: Report) -> list[Any]:
    return [f for f in report.findings if f.status is Status.FAILED]


def prepared(bed: Any, task: str) -> tuple[Case, dict[str, set[tuple[str, str]]]]:
    """The task's drift on the bed, and what an audit run says is to do in each cell."""
    case = CASES[task]
    case.prepare(bed)
    work = to_do(audit(bed, case))
    assert len(work) >= 2, f"{task}: the test needs drift in two cells: {work}"
    return case, work


@pytest.mark.parametrize("task", TASKS)
def test_lock_held_past_the_budget_fails_that_cell_alone(
    nova_bed: Any, tmp_path: Path, task: str
) -> None:
    case, work = prepared(nova_bed, task)
    config = support.config_with(nova_bed, tmp_path, audit=SHORT)
    with inject("lock_held", case.target(nova_bed, BLOCKED, "lock_held")) as fault:
        started = time.monotonic()
        report = heal(nova_bed, case, config)
        took = time.monotonic() - started
    assert fault.waiters, f"{task} never waited on the held lock"
    assert report.code == Code.FAILURE and report.cells_failed == [BLOCKED], report.findings
    (finding,) = failed(report)
    assert "db_lock_wait_timeout" in finding.problem and "1205" in finding.problem, finding
    assert "tried 2 time(s)" in finding.problem and "nothing of it was written" in finding.problem
    assert finding.fix and "innodb_trx" in finding.fix and task in finding.fix, finding.fix
    assert took < 20, f"two 1 s lock waits took {took:.1f} s"
    left, blocked = to_do(audit(nova_bed, case)), REPORTED_IN.get(task, BLOCKED)
    assert set(left) == {blocked}, f"the other cells were not healed: {left}"
    assert left[blocked] == work[blocked], "the failed cell was half written"


@pytest.mark.parametrize("task", TASKS)
def test_a_long_lock_wait_never_stalls_the_run_past_its_deadline(
    nova_bed: Any, tmp_path: Path, task: str
) -> None:
    """4 s lock waits, 3 retries, a 6 s budget: the second try may only wait for what is
    left, so the run ends at about 6 s (not 8.4 s, nor 16 s for every try)."""
    case, _ = prepared(nova_bed, task)
    config = support.config_with(nova_bed, tmp_path, audit=lock_wait_knobs(4, 3))
    with inject("lock_held", case.target(nova_bed, BLOCKED, "lock_held")) as fault:
        started = time.monotonic()
        report = heal(nova_bed, case, config, time_budget=BUDGET, cells=[BLOCKED])
        took = time.monotonic() - started
    assert fault.waiters, f"{task} never waited on the held lock"
    assert took < BUDGET + 2, f"{task} ran {took:.1f} s with a {BUDGET} s budget"
    assert report.cells_failed == [BLOCKED] and report.code == Code.FAILURE, report.findings
    assert all("db_lock_wait_timeout" in f.problem for f in failed(report)), failed(report)


@pytest.mark.parametrize("task", TASKS)
def test_audit_under_a_held_lock_writes_nothing_and_never_waits(nova_bed: Any, task: str) -> None:
    """Audit runs take no write lock: a held row lock neither stalls nor fails them
    (so a deadlock or a KILL of a lock waiter has nothing to hit either)."""
    case = CASES[task]
    case.prepare(nova_bed)
    before = support.snapshot(nova_bed)
    with inject("lock_held", case.target(nova_bed, BLOCKED, "lock_held")) as fault:
        report = audit(nova_bed, case)
    assert support.snapshot(nova_bed) == before
    assert not failed(report) and report.code == Code.WARNING, report.findings
    assert not fault.waiters, "an audit run waited on a row lock: it took a write lock"


def heal_and_fingerprint(
    bed: Any, case: Case, config: str, kind: str | None = None
) -> tuple[Report, dict[str, Any], Fault | None]:
    """One heal run (under fault `kind`): its report and the state it leaves."""
    target = case.target(bed, BLOCKED, kind) if kind else None
    base = fingerprint.baseline(bed)
    if target is None or kind is None:
        report, fault = heal(bed, case, config), None
    else:
        with inject(kind, target, seconds=RELEASED_AFTER) as fault:
            report = heal(bed, case, config)
    return report, fingerprint.fingerprint(bed, base, placement=False), fault


def assert_hit(kind: str, fault: Fault | None) -> None:
    """The fault really met the task's write transaction."""
    assert fault is not None and fault.waiters, f"{kind}: the task never waited on the fault"
    if kind == "deadlock":
        assert fault.deadlocks == 1 and fault.victim == "task", vars(fault)
    if kind == "kill":
        assert fault.killed == fault.waiters[:1], vars(fault)


@pytest.mark.parametrize("task", TASKS)
def test_transient_faults_are_retried_to_the_undisturbed_state(
    nova_bed: Any, tmp_path: Path, task: str
) -> None:
    case, _ = prepared(nova_bed, task)
    config = support.config_with(nova_bed, tmp_path, audit=lock_wait_knobs(5, 3))
    saved = savepoint.save(nova_bed, tmp_path / "saved")
    try:
        clean, expected, _ = heal_and_fingerprint(nova_bed, case, config)
        assert fixed(clean) and not failed(clean), clean.findings
        for kind in ("lock_released", "deadlock", "kill"):
            savepoint.restore(nova_bed, saved)
            report, state, fault = heal_and_fingerprint(nova_bed, case, config, kind)
            assert_hit(kind, fault)
            assert not failed(report) and report.code == clean.code, (kind, report.findings)
            assert fixed(report) == fixed(clean), kind
            assert not fingerprint.differences(expected, state), (
                f"{kind}:\n{fingerprint.report(expected, state)}"
            )
    finally:
        savepoint.drop(saved)
