"""SIGKILL every writing task at >= 20 points of a heal run; the rerun must converge exactly.

Per task: seed the drift the task heals, save that state (testbed.savepoint),
run the heal once uninterrupted and fingerprint the result (testbed.fingerprint).
Then per kill point (testbed.killpoint: the real CLI, forked, SIGKILLed at its
N-th SQL statement / COMMIT / HTTP request): restore, kill, check that what the
killed run left is consistent (no half batch), rerun to the end with the same
state directory, and compare with the uninterrupted fingerprint.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import testbed
from nova_audit_ops.engine.state import FileStateStore
from testbed import cinder as cinder_bed
from testbed import fingerprint, killpoint, nova_api, savepoint
from testbed.backends import get_backend
from testbed.state import TestBed
from tests import support
from tests.tasks.test_archive_deleted_rows import delete_instances

POINTS = 20
FUTURE = "2100-01-01"
OLD = dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc)
# Tasks whose cells are independent run on one cell: a kill is per cell, and 40 runs stay short
# (archive and purge reflect ~110 tables per cell per run, ~1.5 s).
ONE_CELL = ("--cell", "cell1")
LATER = dt.datetime(2026, 6, 1, 14, 0, tzinfo=dt.timezone.utc)


@dataclass
class Case:
    """One writing task: its drift, its CLI options, and what a killed run must not leave."""

    task: str
    drift: Callable[[TestBed, Services | None], Any]
    options: tuple[str, ...] | Callable[[TestBed], tuple[str, ...]] = ()
    placement: bool = False
    consistent: Callable[[TestBed, Reference], list[str]] = field(default=lambda bed, ref: [])
    now: dt.datetime | Callable[[TestBed], dt.datetime] | None = None  # pinned "now"
    services: Callable[[TestBed, Path], Services] | None = None  # Cinder, nova-api
    name: str = ""  # the test id, when a task has more than one case


@dataclass
class Services:
    """Services a task talks to besides Placement: its config, their state, save/restore."""

    config: str
    stop: Callable[[], Any]
    state: Callable[[], dict[str, Any]] = field(default=lambda: {})
    save: Callable[[], Any] = field(default=lambda: None)
    restore: Callable[[], Any] = field(default=lambda: None)
    cinder: Any = None


@dataclass
class Reference:
    """What a killed run is judged against: the saved start and the uninterrupted result."""

    saved: TestBed
    placement_before: dict[str, Any]  # and the other services' state before the run
    expected: dict[str, Any]
    services: Services | None = None
    code: int = 0  # the uninterrupted run's exit code


def duplicate_mappings(bed: TestBed, ref: Reference) -> list[str]:
    """Instances mapped twice (a batch inserted twice)."""
    rows = support.query(
        bed.api_url,
        "SELECT instance_uuid, COUNT(*) AS n FROM instance_mappings "
        "GROUP BY instance_uuid HAVING n > 1",
    )
    return [f"instance {r.instance_uuid} mapped {r.n} times" for r in rows]


def flagged_without_mapping(bed: TestBed, ref: Reference) -> list[str]:
    """Compute nodes marked mapped = 1 whose host has no host mapping (a lost host)."""
    mapped = {r.host for r in support.query(bed.api_url, "SELECT host FROM host_mappings")}
    lost = []
    for cell in bed.compute_cells:
        for r in support.query(
            cell.url, "SELECT host FROM compute_nodes WHERE mapped = 1 AND deleted = 0"
        ):
            if r.host not in mapped:
                lost.append(f"{cell.name} host {r.host} flagged mapped without a mapping")
    return lost


def half_archived(bed: TestBed, ref: Reference) -> list[str]:
    """Rows both in a table and its shadow, or main + shadow counts not conserved."""
    problems = []
    for cell, before in zip(bed.cells, ref.saved.cells, strict=True):
        pairs = _shadowed(cell.url)
        both = " UNION ALL ".join(
            f"SELECT '{t}' AS name, COUNT(*) AS n FROM `{t}` m JOIN `shadow_{t}` s USING (id)"
            for t in pairs
        )
        dups = {r.name: r.n for r in support.query(cell.url, both) if r.n}
        if dups:
            problems.append(f"{cell.name}: rows in both main and shadow tables: {dups}")
        now, then = _counts(cell.url), _counts(before.url)
        changed = {
            t: (then[t] + then[f"shadow_{t}"], now[t] + now[f"shadow_{t}"])
            for t in pairs
            if now[t] + now[f"shadow_{t}"] != then[t] + then[f"shadow_{t}"]
        }
        if changed:
            problems.append(f"{cell.name}: main + shadow rows (before, after) {changed}")
    return problems


_SHADOWED: dict[str, list[str]] = {}


def _shadowed(url: str) -> list[str]:
    """Tables with a shadow twin and an id column (the schema never changes in these tests)."""
    if url not in _SHADOWED:
        rows = support.query(
            url,
            "SELECT table_name AS name FROM information_schema.columns "
            "WHERE table_schema = DATABASE() AND column_name = 'id'",
        )
        names = {r.name for r in rows}
        _SHADOWED[url] = sorted(n for n in names if f"shadow_{n}" in names)
    return _SHADOWED[url]


def main_tables_untouched(bed: TestBed, ref: Reference) -> list[str]:
    """purge deletes from shadow tables only, and never brings a row back."""
    problems = []
    for cell, before in zip(bed.cells, ref.saved.cells, strict=True):
        now, then = _counts(cell.url), _counts(before.url)
        for table, n in now.items():
            if table.startswith("shadow_") and n > then[table]:
                problems.append(f"{cell.name}.{table} grew from {then[table]} to {n}")
            elif not table.startswith("shadow_") and n != then[table]:
                problems.append(f"{cell.name}.{table} changed from {then[table]} to {n}")
    return problems


def _counts(url: str) -> dict[str, int]:
    rows = support.query(
        url,
        "SELECT table_name AS name FROM information_schema.tables "
        "WHERE table_schema = DATABASE() AND table_type = 'BASE TABLE'",
    )
    sql = " UNION ALL ".join(
        f"SELECT '{r.name}' AS name, COUNT(*) AS n FROM `{r.name}`" for r in rows
    )
    return {r.name: int(r.n) for r in support.query(url, sql)}


def _map_drift(bed: TestBed, services: Services | None) -> None:
    testbed.drift(bed, "unmapped_instances", 12)


def _host_drift(bed: TestBed, services: Services | None) -> None:
    testbed.drift(bed, "unmapped_hosts", 4)
    testbed.drift(bed, "new_hosts", 4)


def _mapping_drift(bed: TestBed, services: Services | None) -> None:
    testbed.drift(bed, "null_cell_mappings", 3)
    testbed.drift(bed, "orphan_mappings", 3)
    testbed.drift(bed, "wrong_cell_mappings", 3)


def _archive_drift(bed: TestBed, services: Services | None) -> None:
    delete_instances(bed, "cell1", OLD, limit=4)


def _purge_drift(bed: TestBed, services: Services | None) -> None:
    _archive_drift(bed, services)
    support.run(bed, "archive_deleted_rows", mode="heal", before=FUTURE, cells=["cell1"])


def with_nova_api(bed: TestBed, tmp_path: Path) -> Services:
    api = nova_api.start(bed)
    config = support.config_with(bed, tmp_path, nova=nova_api.config_section(api))
    return Services(config, lambda: nova_api.stop(api))


def with_cinder(bed: TestBed, tmp_path: Path) -> Services:
    """A seeded Cinder whose SQLite database is saved and restored with the bed."""
    cinder = cinder_bed.start(bed)
    copy = get_backend("sqlite")
    live, saved = f"sqlite:///{cinder.db_path}", f"sqlite:///{tmp_path / 'cinder-saved.sqlite'}"
    try:
        assert cinder_bed.seed(bed, cinder) > 0
        config = support.config_with(bed, tmp_path, cinder=cinder_bed.config_section(cinder))
    except BaseException:
        cinder_bed.stop(cinder)
        raise
    return Services(
        config,
        lambda: cinder_bed.stop(cinder),
        state=lambda: {"cinder": cinder_state(cinder)},
        save=lambda: copy.copy([(live, saved)]),
        restore=lambda: copy.copy([(saved, live)]),
        cinder=cinder,
    )


def cinder_state(cinder: cinder_bed.Cinder) -> dict[str, Any]:
    volumes = cinder_bed.get(cinder, "/volumes/detail?all_tenants=1")["volumes"]
    return fingerprint.cinder_state(cinder_bed.attachments(cinder), volumes)


def _attachment_drift(bed: TestBed, services: Services | None) -> None:
    """Dangling attachments first seen an hour before the killed runs."""
    assert services is not None
    cinder = services.cinder
    cinder_bed.deleted_servers(bed, cinder, 3)
    cinder_bed.unknown_servers(bed, cinder, 2)
    support.run(
        bed,
        "volume_attachments",
        mode="audit",
        config_path=services.config,
        state=FileStateStore(str(bed.dir / savepoint.STATE_DIR)),
        reference_time=LATER - dt.timedelta(hours=1),
    )


def cinder_atomic(bed: TestBed, ref: Reference) -> list[str]:
    """Each attachment and volume is as it was or as the full run leaves it."""
    assert ref.services is not None
    now, then, done = (
        state["cinder"] for state in (ref.services.state(), ref.placement_before, ref.expected)
    )
    return [
        f"{kind} {key} is {now[kind].get(key)}"
        for kind in ("attachments", "volumes")
        for key in sorted(set(now[kind]) | set(then[kind]))
        if now[kind].get(key) not in (then[kind].get(key), done[kind].get(key))
    ]


def _seed_time(bed: TestBed) -> dt.datetime:
    return dt.datetime.fromisoformat(bed.anchor).replace(tzinfo=dt.timezone.utc)


def _soon_after_seed(bed: TestBed) -> dt.datetime:
    """host_fault's "now": every seeded host reported in 30 s before."""
    return _seed_time(bed) + dt.timedelta(seconds=30)


def _host_fault_drift(bed: TestBed, services: Services | None) -> None:
    """The first compute host of each cell went silent an hour before."""
    for cell in bed.compute_cells:
        host = support.query(
            cell.url, "SELECT host FROM services WHERE `binary` = 'nova-compute' ORDER BY id"
        )[0].host
        support.execute(
            cell.url,
            "UPDATE services SET last_seen_up = last_seen_up - INTERVAL 1 HOUR WHERE host = :h",
            h=host,
        )


def half_reset(bed: TestBed, ref: Reference) -> list[str]:
    """Instances of the silent hosts are as they were, or reset to error; never anything else."""
    hosts = _silent_hosts(bed)[1].split(",")
    sql = "SELECT uuid, vm_state, task_state FROM instances WHERE host IN :h AND deleted = 0"
    problems = []
    for cell, before in zip(bed.cells, ref.saved.cells, strict=True):
        then = {r.uuid: (r.vm_state, r.task_state) for r in support.query(before.url, sql, h=hosts)}
        for r in support.query(cell.url, sql, h=hosts):
            if (r.vm_state, r.task_state) not in (then.get(r.uuid), ("error", None)):
                problems.append(f"instance {r.uuid} is {r.vm_state}/{r.task_state}")
    return problems


def half_stopped(bed: TestBed, ref: Reference) -> list[str]:
    """Per silent host, its running instances all as they were, or all stopped with one
    stop action each (one transaction per host); nothing else ever changes."""
    hosts = _silent_hosts(bed)[1].split(",")
    sql = (
        "SELECT i.host, i.uuid, i.vm_state, i.power_state, i.task_state, "
        "(SELECT COUNT(*) FROM instance_actions a WHERE a.instance_uuid = i.uuid "
        "AND a.action = 'stop') AS stops FROM instances i WHERE i.host IN :h AND i.deleted = 0"
    )
    problems = []
    for cell, before in zip(bed.cells, ref.saved.cells, strict=True):
        then = {r.uuid: tuple(r)[2:] for r in support.query(before.url, sql, h=hosts)}
        done: dict[str, set[bool]] = {}
        for r in support.query(cell.url, sql, h=hosts):
            stopped = tuple(r)[2:] == ("stopped", 4, None, 1)
            if not stopped and tuple(r)[2:] != then.get(r.uuid):
                problems.append(f"instance {r.uuid} is {tuple(r)[2:]}")
            if then.get(r.uuid, ("",))[0] in ("active", "paused"):
                done.setdefault(r.host, set()).add(stopped)
        problems += [f"host {h} is half stopped" for h, seen in done.items() if len(seen) > 1]
    return problems


def _silent_hosts(bed: TestBed) -> tuple[str, ...]:
    """--hosts naming the hosts _host_fault_drift silenced."""
    cut = (_seed_time(bed) - dt.timedelta(minutes=30)).replace(tzinfo=None)
    hosts = [
        r.host
        for cell in bed.compute_cells
        for r in support.query(
            cell.url,
            "SELECT host FROM services WHERE `binary` = 'nova-compute' AND last_seen_up < :t",
            t=cut,
        )
    ]
    return ("--hosts", ",".join(sorted(hosts)))


def placement_atomic(bed: TestBed, ref: Reference) -> list[str]:
    """Each consumer and provider is as it was or as the full run leaves it: no half write."""
    now = fingerprint.placement_state(bed)
    then, done = ref.placement_before, ref.expected.get("placement", {})
    problems = []
    for kind in ("consumers", "providers"):
        for key in sorted(set(now[kind]) | set(then[kind]) | set(done.get(kind, {}))):
            value = now[kind].get(key)
            if value not in (then[kind].get(key), done.get(kind, {}).get(key)):
                problems.append(f"{kind[:-1]} {key} is {value}")
    return problems


def _allocation_drift(bed: TestBed, services: Services | None) -> None:
    testbed.drift(bed, "missing_allocations", 6)
    testbed.drift(bed, "wrong_user_allocations", 3)


def _aggregate_drift(bed: TestBed, services: Services | None) -> None:
    testbed.drift(bed, "missing_aggregates", 6)


def _orphan_drift(bed: TestBed, services: Services | None) -> None:
    """Orphans first seen two hours before the killed runs (the CLI's own state dir)."""
    testbed.drift(bed, "orphan_allocations", 6)
    support.run(
        bed,
        "orphaned_allocations",
        mode="audit",
        state=FileStateStore(str(bed.dir / savepoint.STATE_DIR)),
        reference_time=LATER - dt.timedelta(hours=2),
    )


CASES = [
    Case(
        "map_instances", _map_drift, ("--batch-size", "3", *ONE_CELL), consistent=duplicate_mappings
    ),
    Case(
        "discover_hosts",
        _host_drift,
        ("--batch-size", "2", *ONE_CELL),
        consistent=flagged_without_mapping,
    ),
    Case(
        "heal_instance_mappings",
        _mapping_drift,
        ("--batch-size", "2"),
        consistent=duplicate_mappings,
    ),
    Case(
        "archive_deleted_rows",
        _archive_drift,
        ("--before", FUTURE, "--batch-size", "3", *ONE_CELL),
        consistent=half_archived,
    ),
    Case(
        "purge",
        _purge_drift,
        ("--before", FUTURE, "--batch-size", "7", *ONE_CELL),
        consistent=main_tables_untouched,
    ),
    Case(
        "heal_allocations",
        _allocation_drift,
        ("--batch-size", "2"),
        placement=True,
        consistent=placement_atomic,
    ),
    Case("sync_aggregates", _aggregate_drift, placement=True, consistent=placement_atomic),
    Case(
        "orphaned_allocations",
        _orphan_drift,
        ("--delete", "--grace-period", "60", "--batch-size", "1"),
        placement=True,
        consistent=placement_atomic,
        now=LATER,
    ),
    Case(
        "volume_attachments",
        _attachment_drift,
        ("--batch-size", "2"),
        consistent=cinder_atomic,
        now=LATER,
        services=with_cinder,
    ),
    Case(
        "host_fault",
        _host_fault_drift,
        _silent_hosts,
        consistent=half_reset,
        now=_soon_after_seed,
        services=with_nova_api,
    ),
    Case(
        "host_fault",
        _host_fault_drift,
        lambda bed: (*_silent_hosts(bed), "--instance-state", "stopped"),
        consistent=half_stopped,
        now=_soon_after_seed,
        services=with_nova_api,
        name="host_fault_stopped",
    ),
]


def argv(bed: TestBed, case: Case, config: str) -> list[str]:
    options = case.options(bed) if callable(case.options) else case.options
    return ["run", case.task, "--config-file", config, "--mode", "heal", *options]


def _now(case: Case, bed: TestBed) -> dt.datetime | None:
    return case.now(bed) if callable(case.now) else case.now


def _state(
    bed: TestBed, case: Case, base: fingerprint.Baseline, services: Services | None
) -> dict[str, Any]:
    shot = fingerprint.fingerprint(bed, base, case.placement)
    if services is not None:
        shot.update(services.state())
    return shot


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name or c.task)
def test_kill_at_any_point_converges(
    case: Case, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    bed = request.getfixturevalue("nova_bed_placement" if case.placement else "nova_bed")
    services = case.services(bed, tmp_path) if case.services else None
    try:
        _kill_everywhere(bed, case, services, tmp_path)
    finally:
        if services is not None:
            services.stop()


def _kill_everywhere(bed: TestBed, case: Case, services: Services | None, tmp_path: Path) -> None:
    case.drift(bed, services)
    saved = savepoint.save(bed, tmp_path / "saved")
    if services is not None:
        services.save()
    try:
        command = argv(bed, case, services.config if services else str(bed.config_path))
        before = fingerprint.placement_state(bed) if case.placement else {}
        if services is not None:
            before.update(services.state())
        base = fingerprint.baseline(bed)
        start = _state(bed, case, base, services)
        code, events = killpoint.count(command, now=_now(case, bed))
        assert code in (0, 1), f"uninterrupted {case.task} exited {code}"
        ref = Reference(saved, before, _state(bed, case, base, services), services, code)
        assert fingerprint.differences(start, ref.expected), f"{case.task} healed nothing"
        points = killpoint.spread(events, POINTS)
        assert len(points) >= POINTS, f"only {len(events)} events"
        started = time.monotonic()
        for point in points:
            _kill_and_rerun(bed, case, command, ref, point, events, services)
        print(
            f"\n{case.task}: E={len(events)} points={len(points)} {time.monotonic() - started:.1f}s"
        )
    finally:
        savepoint.drop(saved)


def _kill_and_rerun(
    bed: TestBed,
    case: Case,
    command: list[str],
    ref: Reference,
    point: int,
    events: list[str],
    services: Services | None,
) -> None:
    where = f"{case.task} killed at event {point}/{len(events)} ({events[point - 1]!r})"
    savepoint.restore(bed, ref.saved)
    if services is not None:
        services.restore()
    base = fingerprint.baseline(bed)
    now = _now(case, bed)
    assert killpoint.run(command, kill_at=point, now=now) == killpoint.KILLED, where
    problems = case.consistent(bed, ref)
    assert not problems, f"{where} left: {problems}"
    rerun = killpoint.run(command, now=now)
    assert rerun == ref.code, f"{where}: the rerun exited {rerun}, an uninterrupted run {ref.code}"
    actual = _state(bed, case, base, services)
    assert actual == ref.expected, (
        f"{where}, then rerun, differs from an uninterrupted run:\n"
        + fingerprint.report(ref.expected, actual)
    )
