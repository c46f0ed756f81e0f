"""Least privilege on real MariaDB users: the grants `nova-audit grants` prints are enough.

Accounts are created from the printed statements (and dropped afterwards):
- every task audits under a SELECT-only account and finds exactly what the bed's
  full account finds (a table the task reads but does not declare fails here);
- every task that writes to a database heals under the grants printed for it alone
  (a write it does not declare fails here);
- a heal under the SELECT-only account is refused before its first write, with the
  missing privilege and the grants command named, exit 2, nothing written.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import testbed
from nova_audit_ops import cli, grants, registry
from nova_audit_ops.engine.report import Code, Report, Status
from nova_audit_ops.engine.state import MemoryStateStore
from testbed.backends import admin_connection
from tests import support

pytestmark = pytest.mark.timeout(300)
FUTURE = "2100-01-01"
T0 = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.timezone.utc)
# Drift per task, and the options its runs take (as tests/tasks/* inject and run them).
DRIFT: dict[str, list[tuple[str, int]]] = {
    "discover_hosts": [("unmapped_hosts", 2)],
    "map_instances": [("unmapped_instances", 3)],
    "heal_instance_mappings": [
        ("null_cell_mappings", 2),
        ("orphan_mappings", 2),
        ("wrong_cell_mappings", 2),
    ],
    "heal_allocations": [("missing_allocations", 2), ("wrong_user_allocations", 1)],
    "sync_aggregates": [("missing_aggregates", 1)],
    "orphaned_allocations": [("orphan_allocations", 2)],
    "host_fault": [("silent_hosts", 1)],
    "preflight": [("unmapped_hosts", 1)],
}
OPTIONS: dict[str, dict[str, Any]] = {
    "heal_instance_mappings": {"grace_period": 0},
    "archive_deleted_rows": {"before": FUTURE},
    "purge_shadow_tables": {"before": FUTURE},
    "orphaned_allocations": {"delete": True, "reference_time": T0},
}
WRITE = re.compile(r"^\s*(?P<verb>INSERT INTO|UPDATE|DELETE FROM)\s+`?(?P<table>\w+)`?", re.I)
PLACEMENT_WRITERS = {"heal_allocations", "sync_aggregates", "orphaned_allocations"}
DB_WRITERS = [
    "discover_hosts",
    "map_instances",
    "heal_instance_mappings",
    "archive_deleted_rows",
    "purge_shadow_tables",
]
# Audited here without their APIs (host_fault audits from the databases alone);
# volume_attachments needs Cinder: test_api_tasks_under_their_grants.
AUDITED = sorted(set(DRIFT) | set(DB_WRITERS))


class Accounts:
    """MariaDB accounts made from `nova-audit grants` output; all dropped at the end.

    The bed pool recycles its copies (same database names), so an account made for
    one bed, mode and task list serves every later test that asks for the same.
    """

    def __init__(self) -> None:
        self.made: dict[tuple[str, str, tuple[str, ...]], tuple[str, str]] = {}

    def create(self, bed: Any, mode: str, tasks: list[str] | None = None) -> tuple[str, str]:
        key = (str(bed.api_url), mode, tuple(tasks or ()))
        if key in self.made:
            return self.made[key]
        user, password = f"nag_{secrets.token_hex(5)}", "pw" + secrets.token_hex(10)
        printed = print_grants(bed, mode, tasks, f"{user}@%")
        with admin_connection() as conn:
            conn.execute(sa.text(f"CREATE USER '{user}'@'%' IDENTIFIED BY '{password}'"))
            self.made[key] = (user, password)
            for line in printed.splitlines():
                if line.startswith("GRANT "):
                    conn.execute(sa.text(line))
        return user, password

    def drop(self) -> None:
        with admin_connection() as conn:
            for user, _ in self.made.values():
                conn.execute(sa.text(f"DROP USER IF EXISTS '{user}'@'%'"))


@pytest.fixture(scope="module")
def accounts() -> Iterator[Accounts]:
    made = Accounts()
    try:
        yield made
    finally:
        made.drop()


def print_grants(bed: Any, mode: str, tasks: list[str] | None, user: str) -> str:
    """`nova-audit grants` as an operator runs it, its output captured."""
    argv = ["grants", "--config-file", str(bed.config_path), "--mode", mode, "--user", user]
    for task in tasks or []:
        argv += ["--task", task]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli.main(argv) == 0
    return out.getvalue()


def as_account(bed: Any, directory: Path, account: tuple[str, str], **sections: Any) -> str:
    directory.mkdir(parents=True, exist_ok=True)
    user, password = account
    audit = {"database_user": user, "database_password": password}
    return support.config_with(bed, directory, audit=audit, **sections)


def prepare(bed: Any, task: str) -> None:
    for scenario, count in DRIFT.get(task, []):
        testbed.drift(bed, scenario, count)
    if task == "purge_shadow_tables":  # shadow rows to purge: archive as the full account
        support.run(bed, "archive_deleted_rows", mode="heal", before=FUTURE)


def run(bed: Any, task: str, mode: str, config: str | None = None, **extra: Any) -> Report:
    options = {**OPTIONS.get(task, {}), **extra}
    if task in ("host_fault", "preflight"):  # judged against the seed's heartbeats
        anchor = dt.datetime.fromisoformat(bed.anchor).replace(tzinfo=dt.timezone.utc)
        options.setdefault("reference_time", anchor + dt.timedelta(seconds=30))
    return support.run(bed, task, mode=mode, config_path=config, **options)


@contextlib.contextmanager
def recorded_writes() -> Iterator[set[tuple[str, str]]]:
    """(table, INSERT/UPDATE/DELETE) of every statement any engine runs meanwhile."""
    found: set[tuple[str, str]] = set()

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        match = WRITE.match(statement)
        if match:
            found.add((match["table"], match["verb"].split()[0].upper()))

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", record)
    try:
        yield found
    finally:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", record)


def seen(report: Report) -> list[tuple[Any, ...]]:
    return sorted(
        (f.kind, f.object_id, f.problem, f.action, f.status, f.cell) for f in report.findings
    )


def bed_for(request: pytest.FixtureRequest, task: str) -> Any:
    fixture = "nova_bed_placement" if task in PLACEMENT_WRITERS else "nova_bed"
    return request.getfixturevalue(fixture)


@pytest.mark.parametrize("task", AUDITED)
def test_audit_under_a_select_only_account_finds_what_the_full_account_finds(
    task: str, request: pytest.FixtureRequest, accounts: Accounts, tmp_path: Path
) -> None:
    """... and a heal under it of a task that writes to a database is refused, writing nothing."""
    bed = bed_for(request, task)
    prepare(bed, task)
    full = run(bed, task, "audit")
    assert full.counts.drifted > 0 or task == "preflight", "the drift was not found at all"
    user, password = accounts.create(bed, "audit")
    reader = as_account(bed, tmp_path, (user, password))
    restricted = run(bed, task, "audit", reader)
    assert seen(restricted) == seen(full)
    assert restricted.counts == full.counts and restricted.code == full.code
    if task in DB_WRITERS:
        assert_refused(bed, task, reader, f"{user}@%")


def assert_refused(bed: Any, task: str, config: str, grantee: str) -> None:
    before = support.snapshot(bed)
    report = run(bed, task, "heal", config)
    assert support.snapshot(bed) == before, "a refused heal wrote"
    assert report.code == Code.FAILURE
    refusals = [f for f in report.findings if f.kind == "cell"]
    assert refusals and all(f.status is Status.FAILED for f in refusals)
    for finding in refusals:
        assert "refused before its first write" in finding.problem
        assert f"account {grantee} lacks " in finding.problem and " on nat_" in finding.problem
        command = f"nova-audit grants --config-file {config} --mode heal --task {task}"
        assert f"{command} --user {grantee}" in str(finding.fix)


@pytest.mark.parametrize("task", DB_WRITERS + sorted(PLACEMENT_WRITERS))
def test_heal_under_the_grants_printed_for_the_task(
    task: str, request: pytest.FixtureRequest, accounts: Accounts, tmp_path: Path
) -> None:
    bed = bed_for(request, task)
    prepare(bed, task)
    config = as_account(bed, tmp_path, accounts.create(bed, "heal", [task]))
    state = MemoryStateStore()
    with recorded_writes() as writes:
        report = run(bed, task, "heal", config, state=state)
        if task == "orphaned_allocations":  # deleted on a second sighting a grace period later
            later = T0 + dt.timedelta(hours=2)
            report = run(bed, task, "heal", config, state=state, reference_time=later)
    spec = registry.spec(task)
    declared = {
        (table, privilege)
        for access in (spec.api_tables, spec.cell_tables)
        for table, privileges in access.writes.items()
        for privilege in privileges
    }
    if spec.cell_tables.reflected:  # archive and purge: their listed API writes at least
        assert declared <= writes
    else:  # every declared write was performed: none is granted for nothing
        assert writes == declared
    failed = [f for f in report.findings if f.status is Status.FAILED]
    assert failed == [] and report.code < Code.FAILURE, report.findings
    assert report.counts.fixed > 0
    after = run(bed, task, "audit")
    assert after.counts.drifted == 0, after.findings


def test_the_cli_exits_2_without_a_traceback(
    nova_bed: Any, accounts: Accounts, tmp_path: Path
) -> None:
    testbed.drift(nova_bed, "unmapped_hosts", 1)
    config = as_account(nova_bed, tmp_path, accounts.create(nova_bed, "audit"))
    before = support.snapshot(nova_bed)
    result = support.cli("run", "discover_hosts", "--config-file", config, "--mode", "heal")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert "lacks INSERT on" in result.stderr and "nova-audit grants" in result.stdout
    assert support.snapshot(nova_bed) == before


def test_a_write_the_server_denies_is_a_finding_and_rolls_back(
    nova_bed: Any, accounts: Accounts, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where privileges cannot be read up front, the server's 1142 is caught at the write."""
    testbed.drift(nova_bed, "unmapped_instances", 3)
    config = as_account(nova_bed, tmp_path, accounts.create(nova_bed, "audit"))
    monkeypatch.setattr(grants, "missing", lambda *args: ([], ""))
    before = support.snapshot(nova_bed)
    report = run(nova_bed, "map_instances", "heal", config)
    assert support.snapshot(nova_bed) == before
    problems = [f.problem for f in report.findings if f.kind == "cell"]
    assert problems and all("refused a statement for want of a privilege" in p for p in problems)
    assert report.code == Code.FAILURE


def test_api_tasks_audit_and_heal_under_their_grants(
    nova_bed: Any, accounts: Accounts, tmp_path: Path
) -> None:
    """volume_attachments (Cinder) and host_fault (nova-api) write through APIs only:
    their database grants are SELECT, on which they audit like the full account and heal."""
    from testbed import cinder as cinder_bed
    from testbed import nova_api

    cinder, api = cinder_bed.start(nova_bed), nova_api.start(nova_bed)
    try:
        cinder_bed.seed(nova_bed, cinder)
        dangling = {c["attachment_id"] for c in cinder_bed.deleted_servers(nova_bed, cinder, 2)}
        [silent] = testbed.drift(nova_bed, "silent_hosts", 1)
        services = {
            "cinder": cinder_bed.config_section(cinder),
            "nova": nova_api.config_section(api),
        }
        (tmp_path / "full").mkdir()
        full = support.config_with(nova_bed, tmp_path / "full", **services)
        later = T0 + dt.timedelta(hours=1)
        vol: dict[str, Any] = {"reference_time": T0}
        root = run(nova_bed, "volume_attachments", "audit", full, **vol)
        reader = as_account(nova_bed, tmp_path, accounts.create(nova_bed, "audit"), **services)
        assert seen(run(nova_bed, "volume_attachments", "audit", reader, **vol)) == seen(root)
        assert {f.object_id for f in root.findings} == dangling
        state = MemoryStateStore()
        healer = as_account(
            nova_bed,
            tmp_path / "heal",
            accounts.create(nova_bed, "heal", ["volume_attachments"]),
            **services,
        )
        run(nova_bed, "volume_attachments", "heal", healer, state=state, **vol)
        healed = run(
            nova_bed, "volume_attachments", "heal", healer, state=state, reference_time=later
        )
        assert {f.object_id for f in healed.findings if f.status is Status.FIXED} == dangling
        hosts = {"hosts": [silent["host"]]}
        root = run(nova_bed, "host_fault", "audit", full, **hosts)
        assert seen(run(nova_bed, "host_fault", "audit", reader, **hosts)) == seen(root)
        healer = as_account(
            nova_bed,
            tmp_path / "heal2",
            accounts.create(nova_bed, "heal", ["host_fault"]),
            **services,
        )
        fixed = run(nova_bed, "host_fault", "heal", healer, **hosts)
        assert fixed.code < Code.FAILURE and fixed.counts.fixed > 0, fixed.findings
    finally:
        cinder_bed.stop(cinder)
        nova_api.stop(api)
