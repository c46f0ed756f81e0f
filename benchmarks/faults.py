"""The fault matrix: every writing task under every fault it can meet, on the test bed.

    .venv/bin/python -m benchmarks.faults [--kills 20] [--fault NAME]… [--task NAME]…

For each task, a drifted state is saved once; the state an uninterrupted,
fault-free heal run leaves is its expected fingerprint (testbed/fingerprint.py:
rows without the ids and clock values a run writes, Placement allocations and
aggregates, Cinder attachments). Then, per fault the task can meet, starting
from the saved state each time:

1. an audit run under the fault must leave the state exactly as it was;
2. heal runs under the fault (at most `--max-runs`) until the state equals the
   expected one, or the runs are spent;
and for `sigkill`, each of `--kills` kill points of the heal run (real SIGKILL at
a counted SQL statement, COMMIT or HTTP request, testbed/killpoint.py) is
followed by one fault-free rerun that must converge.

Printed per fault x task: faults injected, runs, crashes (exit 255 or a
traceback: must be 0), items failed (failed findings over all runs), reruns
needed to converge, rows/allocations/attachments lost and duplicated against the
uninterrupted run (must be 0), and whether audit mode wrote anything. The
assertions live in the test suite (tests/tasks/test_faults.py, …); this command
is for the figures in benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import testbed
from benchmarks.common import REPO, WORK, print_table
from nova_audit_ops import registry, runner
from nova_audit_ops.engine.report import Report
from nova_audit_ops.engine.state import MemoryStateStore
from testbed import api_faults, db_fault_cases, fingerprint, killpoint, savepoint
from testbed import cinder as cinder_bed
from testbed.configs import config_with
from testbed.db import execute, query
from testbed.db_faults import inject, lock_wait_knobs
from testbed.fault_proxy import FaultProxy
from testbed.state import TestBed

FUTURE = "2100-01-01"
# The test budget of the service retries: no doubling pause, Retry-After honoured up to 1 s.
FAST_RETRIES = {
    "service_retries": "3",
    "service_retry_delay_ms": "0",
    "service_retry_max_delay": "1",
}


@dataclass(frozen=True)
class Case:
    """One writing task: the drift it heals and how a heal run of it is invoked."""

    task: str
    drift: Callable[[TestBed], None]
    args: tuple[str, ...] = ()
    services: tuple[str, ...] = ()  # "placement" (always there), "nova", "cinder"


@dataclass
class Outcome:
    """What one fault did to one task, summed over its runs."""

    injected: int = 0
    runs: int = 0
    crashes: int = 0
    failed_items: int = 0
    reruns: int = 0
    lost: int = 0
    duplicated: int = 0
    audit_wrote: bool = False
    converged: bool = True
    notes: list[str] = field(default_factory=list)


# A fault: given the bed and the config path, a context manager yielding
# (config path to run with, a callable counting the faults injected so far).
FaultSetup = Callable[[TestBed, Path], AbstractContextManager[tuple[str, Callable[[], int]]]]


def _drifts(*scenarios: tuple[str, int]) -> Callable[[TestBed], None]:
    def apply(bed: TestBed) -> None:
        for scenario, count in scenarios:
            testbed.drift(bed, scenario, count)

    return apply


def _archived(bed: TestBed) -> None:
    """Shadow rows for purge: the bed's deleted instances archived first."""
    result = cli(bed.config_path, "archive_deleted_rows", "--mode", "heal", "--before", FUTURE)
    if result[0] != 0:
        raise RuntimeError(f"archive before purge failed: {result}")


CASES = (
    Case("discover_hosts", _drifts(("unmapped_hosts", 2), ("new_hosts", 2)), ("--batch-size", "2")),
    Case("map_instances", _drifts(("unmapped_instances", 8)), ("--batch-size", "3")),
    Case(
        "heal_instance_mappings",
        _drifts(("null_cell_mappings", 2), ("wrong_cell_mappings", 2)),
        ("--batch-size", "2"),
    ),
    Case("archive_deleted_rows", lambda bed: None, ("--before", FUTURE, "--batch-size", "3")),
    Case("purge", _archived, ("--before", FUTURE, "--batch-size", "7")),
    Case(
        "heal_allocations",
        _drifts(("missing_allocations", 3), ("wrong_user_allocations", 2)),
        ("--batch-size", "2"),
        ("placement",),
    ),
    Case("sync_aggregates", _drifts(("missing_aggregates", 2)), (), ("placement",)),
)
# orphaned_allocations deletes only after two sightings a grace period (>= 60 s) apart:
# its kill points run with a pinned clock in tests/tasks/test_kill_points.py, its
# Placement faults in tests/tasks/test_faults.py; the matrix leaves it out.


def cli(config: str | Path, task: str, *args: str) -> tuple[int, dict[str, Any] | None, str]:
    """One real CLI run; its exit code, its JSON report (None if it printed none), stderr."""
    proc = subprocess.run(
        [sys.executable, "-m", "nova_audit_ops.cli", "run", task, "--config-file", str(config),
         "--json", *args],
        capture_output=True, text=True, cwd=REPO, timeout=600, check=False,
    )  # fmt: skip
    try:
        report = json.loads(proc.stdout)
    except ValueError:
        report = None
    return proc.returncode, report, proc.stderr


def proxy_fault(
    section: str, target: Callable[[TestBed], str], audit: dict[str, str], **faults: Any
) -> FaultSetup:
    """A FaultProxy in front of one service; the config's `[section] endpoint` points at it."""

    @contextmanager
    def setup(bed: TestBed, work: Path) -> Iterator[tuple[str, Callable[[], int]]]:
        with FaultProxy(target(bed), **faults) as proxy:
            sections = {section: {"endpoint": proxy.url}, "audit": {**FAST_RETRIES, **audit}}
            config = config_with(bed, work, **sections)
            yield config, lambda: proxy.faults + proxy.resets + proxy.delays

    return setup


def _placement(bed: TestBed) -> str:
    return str(bed.placement_url)


# fault name -> (the service it needs, its setup)
FAULTS: dict[str, tuple[str, FaultSetup]] = {
    "placement 500 (1 in 3)": ("placement", proxy_fault("placement", _placement, {}, fail_every=3)),
    "placement 503 + Retry-After": (
        "placement",
        proxy_fault("placement", _placement, {}, fail_every=3, status=503, retry_after=1),
    ),
    "placement reset (1 in 3)": (
        "placement",
        proxy_fault("placement", _placement, {}, reset_every=3),
    ),
    "placement read timeout": (
        "placement",
        proxy_fault("placement", _placement, {"service_timeout": "1"}, delay_every=5, delay=2.5),
    ),
}


def measure_fault(
    bed: TestBed, saved: TestBed, case: Case, setup: FaultSetup, expected: dict[str, Any],
    work: Path, max_runs: int,
) -> Outcome:  # fmt: skip
    """Audit once, then heal until converged, all under the fault, from the saved state."""
    with setup(bed, work) as (config, injected):
        outcome = _under(bed, saved, case, config, expected, max_runs)
        outcome.injected = injected()
    return outcome


def measure_kills(
    bed: TestBed, saved: TestBed, case: Case, expected: dict[str, Any], kills: int, max_runs: int
) -> Outcome:
    """SIGKILL the heal run at `kills` counted points; each time one fault-free rerun follows."""
    outcome = Outcome()
    argv = ["run", case.task, "--config-file", str(bed.config_path), "--mode", "heal", *case.args]
    savepoint.restore(bed, saved)
    _, events = killpoint.count(argv)
    for point in killpoint.spread(events, kills):
        savepoint.restore(bed, saved)
        base = fingerprint.baseline(bed)
        code = killpoint.run(argv, kill_at=point)
        outcome.runs += 1
        outcome.injected += code == killpoint.KILLED
        for run in range(1, max_runs + 1):
            _record(outcome, cli(bed.config_path, case.task, "--mode", "heal", *case.args))
            shot = fingerprint.fingerprint(bed, base)
            if not fingerprint.differences(expected, shot):
                outcome.reruns = max(outcome.reruns, run)
                break
        else:
            outcome.converged = False
            outcome.reruns = max_runs
            outcome.notes.append(f"kill at event {point}: {fingerprint.report(expected, shot)}")
        lost, duplicated = lost_and_duplicated(expected, shot)
        outcome.lost += lost
        outcome.duplicated += duplicated
    return outcome


def _record(outcome: Outcome, result: tuple[int, dict[str, Any] | None, str]) -> None:
    code, report, stderr = result
    outcome.runs += 1
    if code not in (0, 1, 2) or report is None or "Traceback" in stderr:
        outcome.crashes += 1
        outcome.notes.append(f"exit {code}: {stderr.strip().splitlines()[-1:] or ''}")
    if report:
        outcome.failed_items += sum(1 for f in report["findings"] if f["status"] == "failed")


def lost_and_duplicated(expected: dict[str, Any], actual: dict[str, Any]) -> tuple[int, int]:
    """Rows (or allocations, attachments) the expected state has and `actual` lacks, and extras."""
    lost = duplicated = 0
    for key in fingerprint.differences(expected, actual):
        a, b = expected.get(key), actual.get(key)
        if isinstance(a, fingerprint.Table) and isinstance(b, fingerprint.Table):
            lost += sum((Counter(a.rows) - Counter(b.rows)).values())
            duplicated += sum((Counter(b.rows) - Counter(a.rows)).values())
        else:
            flat_a, flat_b = _items(a), _items(b)
            lost += len(flat_a - flat_b)
            duplicated += len(flat_b - flat_a)
    return lost, duplicated


def _items(state: Any) -> set[str]:
    """A Placement or Cinder state as a set of leaf items (allocation, aggregate, …)."""
    flat = fingerprint._flat(state) if isinstance(state, dict) else {"": state}
    return {f"{k}={v!r}" for k, v in flat.items()}


# Database faults made by MariaDB sessions (testbed/db_faults.py), in the first heal run
# of a DB-writing task: (kind, seconds the lock is kept once the task waits, [audit] knobs).
DB_FAULTS = {
    "db lock wait, released": ("lock_released", 1.5, lock_wait_knobs(5, 2)),
    "db lock held past budget": ("lock_held", None, lock_wait_knobs(1, 1)),
    "db deadlock (1213)": ("deadlock", 1.5, lock_wait_knobs(5, 2)),
    "db KILL of the connection": ("kill", 1.5, lock_wait_knobs(5, 2)),
}
BLOCKED = "cell1"


def run_in_process(bed: TestBed, config: str, case: db_fault_cases.Case, mode: str) -> Report:
    """One run in this process (the fault session is a thread of it), as the CLI runs it."""
    params = {k: v for k, v in case.params.items() if k != "reference_time"}
    ctx = runner.open_context(
        case.task,
        registry.load_config(config),
        {**params, "mode": mode},
        reference_time=case.params.get("reference_time"),
        state=MemoryStateStore(),
    )
    try:
        return runner.run_all(ctx)
    finally:
        ctx.engines.dispose()


def measure_db_fault(
    bed: TestBed, saved: TestBed, case: db_fault_cases.Case, fault: tuple[Any, ...],
    work: Path, max_runs: int,
) -> Outcome:  # fmt: skip
    """Audit under a held lock, then heal with the fault in the first run, fault-free after."""
    kind, seconds, knobs = fault
    outcome = Outcome()
    savepoint.restore(bed, saved)
    config = config_with(bed, work, audit=knobs)
    base = fingerprint.baseline(bed)
    run_in_process(bed, config, case, "heal")  # the undisturbed run, for the expected state
    expected = fingerprint.fingerprint(bed, base, placement=False)
    savepoint.restore(bed, saved)
    base = fingerprint.baseline(bed)
    before = fingerprint.fingerprint(bed, base, placement=False)
    with inject("lock_held", case.target(bed, BLOCKED, "lock_held")):
        _record_report(outcome, lambda: run_in_process(bed, config, case, "audit"))
    outcome.audit_wrote = bool(
        fingerprint.differences(before, fingerprint.fingerprint(bed, base, placement=False))
    )
    for run in range(max_runs):
        if run == 0:
            with inject(kind, case.target(bed, BLOCKED, kind), seconds=seconds) as hit:
                _record_report(outcome, lambda: run_in_process(bed, config, case, "heal"))
            outcome.injected = hit.deadlocks + len(hit.killed) or int(bool(hit.waiters))
        else:
            _record_report(outcome, lambda: run_in_process(bed, config, case, "heal"))
        shot = fingerprint.fingerprint(bed, base, placement=False)
        if not fingerprint.differences(expected, shot):
            outcome.reruns = run
            break
    else:
        outcome.converged = False
        outcome.reruns = max_runs
    outcome.lost, outcome.duplicated = lost_and_duplicated(expected, shot)
    return outcome


def _record_report(outcome: Outcome, run: Callable[[], Report]) -> None:
    outcome.runs += 1
    try:
        report = run()
    except Exception as exc:  # escaped the runner's failure boundary: a crash
        outcome.crashes += 1
        outcome.notes.append(f"escaped: {type(exc).__name__}: {exc}")
        return
    outcome.crashes += runner.crashes(report)
    outcome.failed_items += sum(1 for f in report.findings if f.status.value == "failed")


def db_fault_rows(
    bed: TestBed, pristine: TestBed, work: Path, args: argparse.Namespace
) -> list[list[object]]:
    """The database-fault rows of the matrix, one per task of db_fault_cases x fault kind."""
    rows: list[list[object]] = []
    for task, case in db_fault_cases.CASES.items():
        if args.task and task not in args.task:
            continue
        savepoint.restore(bed, pristine)
        case.prepare(bed)
        saved = savepoint.save(bed, work / f"saved-db-{task}")
        try:
            for name, fault in DB_FAULTS.items():
                if not args.fault or name in args.fault:
                    outcome = measure_db_fault(bed, saved, case, fault, work, args.max_runs)
                    rows.append(_row(name, Case(task, lambda bed: None), outcome))
                    print(*(f"  {name} x {task}: {n}" for n in outcome.notes), sep="\n")
        finally:
            savepoint.drop(saved)
    return rows


def _silent_host(bed: TestBed) -> str:
    """Every compute service reports now except one, silent for an hour: host_fault's work."""
    testbed.heartbeat(bed)
    url = next(c.url for c in bed.cells if c.name == BLOCKED)
    computes = "SELECT host FROM services WHERE `binary` = 'nova-compute' ORDER BY id LIMIT 1"
    host = str(query(url, computes)[0][0])
    silence = "UPDATE services SET last_seen_up = last_seen_up - INTERVAL 1 HOUR WHERE host = :h"
    execute(url, silence, h=host)
    return host


def nova_api_rows(bed: TestBed, pristine: TestBed, work: Path, max_runs: int) -> list[list[object]]:
    """host_fault behind a faulty nova-api: one silent host fenced, from the same saved state."""
    rows: list[list[object]] = []
    savepoint.restore(bed, pristine)
    host = _silent_host(bed)
    saved = savepoint.save(bed, work / "saved-host_fault")
    case = Case("host_fault", lambda bed: None, ("--hosts", host), ("nova",))
    try:
        with api_faults.started(bed, "nova") as (_, direct):
            clean = config_with(bed, work, nova=direct, audit=FAST_RETRIES)
            expected = _expected_with(bed, saved, case, clean)
            for fault, faults in sorted(api_faults.FAULTS.items()):
                with api_faults.behind_proxy(direct, **faults) as (proxy, section):
                    config = config_with(
                        bed, work, nova=section, audit=api_faults.audit_section(fault)
                    )
                    outcome = _under(bed, saved, case, config, expected, max_runs)
                    outcome.injected = api_faults.injected(proxy)
                rows.append(_row(f"nova-api {fault}", case, outcome))
    finally:
        savepoint.drop(saved)
    return rows


def _expected_with(bed: TestBed, saved: TestBed, case: Case, config: str) -> dict[str, Any]:
    savepoint.restore(bed, saved)
    base = fingerprint.baseline(bed)
    code, report, stderr = cli(config, case.task, "--mode", "heal", *case.args)
    if code not in (0, 1) or report is None:
        raise RuntimeError(f"{case.task}: the fault-free heal run failed (exit {code}): {stderr}")
    return fingerprint.fingerprint(bed, base)


def _under(
    bed: TestBed, saved: TestBed, case: Case, config: str, expected: dict[str, Any], max_runs: int
) -> Outcome:
    """Audit once, then heal until converged, all with `config` (whose service is faulty)."""
    outcome = Outcome()
    savepoint.restore(bed, saved)
    base = fingerprint.baseline(bed)
    before = fingerprint.fingerprint(bed, base)
    _record(outcome, cli(config, case.task, *case.args))
    outcome.audit_wrote = bool(fingerprint.differences(before, fingerprint.fingerprint(bed, base)))
    for run in range(max_runs):
        _record(outcome, cli(config, case.task, "--mode", "heal", *case.args))
        shot = fingerprint.fingerprint(bed, base)
        if not fingerprint.differences(expected, shot):
            outcome.reruns = run
            break
    else:
        outcome.converged = False
        outcome.reruns = max_runs
        outcome.notes.append(fingerprint.report(expected, shot))
    outcome.lost, outcome.duplicated = lost_and_duplicated(expected, shot)
    return outcome


def cinder_rows(bed: TestBed, pristine: TestBed, work: Path, max_runs: int) -> list[list[object]]:
    """volume_attachments behind a faulty Cinder: fresh dangling attachments per fault.

    Cinder's own database is not part of a savepoint, so each fault gets new drift; the
    expected state is known exactly: the dangling attachments gone, every other one kept.
    """
    rows: list[list[object]] = []
    savepoint.restore(bed, pristine)
    case = Case("volume_attachments", lambda bed: None, (), ("cinder",))
    grace = {"audit.volume_attachments": {"grace_period": "0"}}
    with api_faults.started(bed, "cinder") as (cinder, direct):
        for fault, faults in sorted(api_faults.FAULTS.items()):
            changes = cinder_bed.deleted_servers(bed, cinder, 1)
            changes += cinder_bed.unknown_servers(bed, cinder, 2)
            dangling = {c["attachment_id"] for c in changes}
            before = cinder_bed.attachments(cinder)
            wanted = {k: v for k, v in before.items() if k not in dangling}
            outcome = Outcome()
            with api_faults.behind_proxy(direct, **faults) as (proxy, section):
                audit = api_faults.audit_section(fault)
                config = config_with(bed, work, cinder=section, audit=audit, **grace)
                _record(outcome, cli(config, case.task))
                outcome.audit_wrote = cinder_bed.attachments(cinder) != before
                for run in range(max_runs):
                    _record(outcome, cli(config, case.task, "--mode", "heal"))
                    now = cinder_bed.attachments(cinder)
                    if now == wanted:
                        outcome.reruns = run
                        break
                else:
                    outcome.converged, outcome.reruns = False, max_runs
                outcome.injected = api_faults.injected(proxy)
            outcome.lost = len(set(wanted) - set(now))
            outcome.duplicated = len(set(now) - set(before))
            rows.append(_row(f"cinder {fault}", case, outcome))
    return rows


def expected_state(bed: TestBed, saved: TestBed, case: Case) -> dict[str, Any]:
    """The state one uninterrupted, fault-free heal run leaves (the bed's own config)."""
    return _expected_with(bed, saved, case, str(bed.config_path))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=20, help="SIGKILL points per task")
    parser.add_argument("--max-runs", type=int, default=4, help="heal runs allowed to converge")
    parser.add_argument("--fault", action="append", help="only these faults (and 'sigkill')")
    parser.add_argument("--task", action="append", help="only these tasks")
    args = parser.parse_args(argv)
    import nova_audit_ops.cli  # noqa: F401 - imported once here, so killpoint's forks start warm

    work = WORK / "faults"
    started = time.monotonic()
    bed = testbed.up(
        work / "bed", backend="mariadb", cells=2, hosts_per_cell=3, instances_per_cell=30
    )
    pristine = savepoint.save(bed, work / "pristine")
    rows: list[list[object]] = []
    notes: list[str] = []
    try:
        for case in CASES:
            if args.task and case.task not in args.task:
                continue
            savepoint.restore(bed, pristine)
            case.drift(bed)
            saved = savepoint.save(bed, work / f"saved-{case.task}")
            try:
                expected = expected_state(bed, saved, case)
                for name, (service, setup) in FAULTS.items():
                    if service in case.services and (not args.fault or name in args.fault):
                        outcome = measure_fault(
                            bed, saved, case, setup, expected, work, args.max_runs
                        )
                        rows.append(_row(name, case, outcome))
                        notes += [f"{name} x {case.task}: {n}" for n in outcome.notes]
                if not args.fault or "sigkill" in args.fault:
                    outcome = measure_kills(bed, saved, case, expected, args.kills, args.max_runs)
                    rows.append(_row(f"SIGKILL ({args.kills} points)", case, outcome))
                    notes += [f"sigkill x {case.task}: {n}" for n in outcome.notes]
            finally:
                savepoint.drop(saved)
        rows += db_fault_rows(bed, pristine, work, args)
        if _wanted(args, "host_fault", "nova-api"):
            rows += nova_api_rows(bed, pristine, work, args.max_runs)
        if _wanted(args, "volume_attachments", "cinder"):
            rows += cinder_rows(bed, pristine, work, args.max_runs)
    finally:
        savepoint.drop(pristine)
        testbed.down(bed.dir)
    headers = ["fault", "task", "injected", "runs", "crashes", "items failed", "reruns",
               "lost", "duplicated", "audit wrote"]  # fmt: skip
    print_table(f"fault matrix ({time.monotonic() - started:.0f} s)", rows, headers)
    for note in notes:
        print("  " + note)
    bad = [r for r in rows if r[4] or r[7] or r[8] or r[9] == "yes" or str(r[6]).startswith(">")]
    return 1 if bad else 0


def _wanted(args: argparse.Namespace, task: str, service: str) -> bool:
    by_task = not args.task or task in args.task
    return by_task and (not args.fault or any(f.startswith(service) for f in args.fault))


def _row(name: str, case: Case, outcome: Outcome) -> list[object]:
    """One line of the table; also printed at once, so a long matrix shows its progress."""
    reruns = outcome.reruns if outcome.converged else f">{outcome.reruns}"
    row: list[object] = [
        name, case.task, outcome.injected, outcome.runs, outcome.crashes, outcome.failed_items,
        reruns, outcome.lost, outcome.duplicated, "yes" if outcome.audit_wrote else "no",
    ]  # fmt: skip
    print("row:", *row, sep=" | ", flush=True)
    return row


if __name__ == "__main__":
    raise SystemExit(main())
