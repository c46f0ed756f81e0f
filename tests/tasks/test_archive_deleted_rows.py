"""archive_deleted_rows and purge against Nova's real schema on MariaDB."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import sqlalchemy as sa

import testbed
from nova_audit_ops.engine.report import Code, Status
from nova_audit_ops.engine.state import MemoryStateStore
from nova_audit_ops.tasks import archive_deleted_rows
from tests import support

FUTURE = "2100-01-01"


def content(bed: Any) -> dict[str, dict[str, str]]:
    """Table checksums of every database, without auto-increment counters."""
    shots = support.snapshot(bed)
    return {db: {t: v.split("/ai=")[0] for t, v in tables.items()} for db, tables in shots.items()}


def row_counts(url: str) -> dict[str, int]:
    """main + shadow rows per archivable table: what archiving must conserve."""
    with support.engine(url) as eng:
        names = sa.inspect(eng).get_table_names()
        with eng.connect() as conn:
            counts = {
                n: conn.execute(sa.text(f"SELECT COUNT(*) FROM `{n}`")).scalar_one() for n in names
            }
    return {n: counts[n] + counts[f"shadow_{n}"] for n in names if f"shadow_{n}" in counts}


def duplicates(url: str) -> dict[str, int]:
    """Rows present both in a main table and its shadow twin (must never happen)."""
    found = {}
    with support.engine(url) as eng:
        names = sa.inspect(eng).get_table_names()
        with eng.connect() as conn:
            for n in names:
                if f"shadow_{n}" in names and "id" in {
                    c["name"] for c in sa.inspect(eng).get_columns(n)
                }:
                    dup = conn.execute(
                        sa.text(f"SELECT COUNT(*) FROM `{n}` m JOIN `shadow_{n}` s ON s.id = m.id")
                    ).scalar_one()
                    if dup:
                        found[n] = dup
    return found


def old_deleted(url: str, before: str = FUTURE) -> int:
    rows = support.query(
        url, "SELECT COUNT(*) AS n FROM instances WHERE deleted != 0 AND deleted_at < :b", b=before
    )
    return int(rows[0].n)


def compute_cells(bed: Any) -> list[Any]:
    return [c for c in bed.cells if c.name != "cell0"]


def delete_instances(bed: Any, cell: str, when: dt.datetime, limit: int = 100) -> list[str]:
    """Soft-delete live instances of a cell as Nova does (deleted = id, deleted_at set)."""
    url = support.cell_url(bed, cell)
    uuids = [
        r.uuid
        for r in support.query(
            url, "SELECT uuid FROM instances WHERE deleted = 0 ORDER BY id LIMIT :n", n=limit
        )
    ]
    for uuid in uuids:
        support.execute(
            url,
            "UPDATE instances SET deleted = id, deleted_at = :w, vm_state = 'deleted' "
            "WHERE uuid = :u",
            w=when.replace(tzinfo=None),
            u=uuid,
        )
    return uuids


def test_audit_counts_and_writes_nothing(nova_bed: Any) -> None:
    before = content(nova_bed)
    report = support.run(nova_bed, "archive_deleted_rows", mode="audit", before=FUTURE)
    assert report.code == Code.WARNING
    assert {f.status for f in report.findings} == {Status.WOULD_FIX}
    assert content(nova_bed) == before
    heal = support.run(nova_bed, "archive_deleted_rows", mode="heal", before=FUTURE)
    assert heal.details["rows"] == report.details["rows"], "audit must count what heal moves"


def test_heal_moves_old_rows_conserves_every_table_and_cleans_the_api(nova_bed: Any) -> None:
    counts = {c.name: row_counts(c.url) for c in nova_bed.cells}
    archived = [
        r.uuid
        for c in nova_bed.cells
        for r in support.query(c.url, "SELECT uuid FROM instances WHERE deleted != 0")
    ]
    assert archived, "the test bed seeds soft-deleted instances"
    report = support.run(
        nova_bed, "archive_deleted_rows", mode="heal", before=FUTURE, batch_size=10
    )
    assert report.code == Code.OK
    for cell in nova_bed.cells:
        assert row_counts(cell.url) == counts[cell.name]
        assert old_deleted(cell.url) == 0
        assert duplicates(cell.url) == {}
    for table in ("instance_mappings", "request_specs", "instance_group_member"):
        left = support.query(
            nova_bed.api_url,
            f"SELECT COUNT(*) AS n FROM {table} WHERE instance_uuid IN :u",
            u=tuple(archived),
        )
        assert left[0].n == 0, table
    again = support.run(nova_bed, "archive_deleted_rows", mode="heal", before=FUTURE)
    assert again.counts.drifted == 0, "a rerun archives nothing new"


def test_same_result_as_nova_manage(nova_bed: Any, nova_template: Any) -> None:
    cut = support.query(
        support.cell_url(nova_bed, "cell1"),
        "SELECT deleted_at FROM instances WHERE deleted != 0 ORDER BY deleted_at LIMIT 1",
    )[0].deleted_at + dt.timedelta(seconds=1)
    before = cut.strftime("%Y-%m-%d %H:%M:%S")
    support.run(nova_bed, "archive_deleted_rows", mode="heal", before=before)
    ours = content(nova_bed)

    testbed.reset(nova_bed, nova_template)
    result = testbed.nova_manage(
        nova_bed,
        "db",
        "archive_deleted_rows",
        "--all-cells",
        "--until-complete",
        "--before",
        before,
    )
    assert result.returncode in (0, 1), result.stdout + result.stderr
    assert content(nova_bed) == ours


def test_backfill_of_three_missed_days(nova_bed: Any) -> None:
    base = dt.datetime(2026, 5, 1, 3, 0, tzinfo=dt.timezone.utc)
    support.run(nova_bed, "archive_deleted_rows", mode="heal", before="2026-01-01")  # old seed rows
    days = [base + dt.timedelta(days=k) for k in range(3)]
    deleted = [
        delete_instances(nova_bed, "cell1", day - dt.timedelta(days=30, hours=1), limit=1)[0]
        for day in days
    ]
    state = MemoryStateStore()
    url = support.cell_url(nova_bed, "cell1")
    for k, day in enumerate(days):  # each missed day's run, as a backfill runs them
        support.run(nova_bed, "archive_deleted_rows", mode="heal", reference_time=day, state=state)
        left = {r.uuid for r in support.query(url, "SELECT uuid FROM instances WHERE deleted != 0")}
        assert set(deleted[: k + 1]).isdisjoint(left)
        assert set(deleted[k + 1 :]) <= left
    rerun = support.run(nova_bed, "archive_deleted_rows", mode="heal", reference_time=days[0])
    assert rerun.counts.drifted == 0


def test_shadow_id_collision_is_a_finding(nova_bed: Any) -> None:
    url = support.cell_url(nova_bed, "cell1")
    victim = support.query(
        url,
        "SELECT e.id, e.instance_uuid FROM instance_extra e JOIN instances i "
        "ON i.uuid = e.instance_uuid WHERE i.deleted != 0 ORDER BY e.id LIMIT 1",
    )[0]
    support.execute(
        url,
        "INSERT INTO shadow_instance_extra (id, instance_uuid, created_at, deleted) "
        "VALUES (:i, 'stale-copy', NOW(), 0)",
        i=victim.id,
    )
    counts = row_counts(url)
    report = support.run(nova_bed, "archive_deleted_rows", mode="heal", before=FUTURE)
    collisions = [f for f in report.findings if f.object_id == "shadow_instance_extra"]
    assert len(collisions) == 1 and str(victim.id) in collisions[0].problem
    assert collisions[0].status is Status.MUST_NOT_FIX and report.code == Code.FAILURE
    assert row_counts(url) == counts
    left = support.query(url, "SELECT uuid FROM instances WHERE deleted != 0")
    assert [r.uuid for r in left] == [victim.instance_uuid]


def test_crash_between_cell_commit_and_api_cleanup_is_finished_next_run(
    nova_bed: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = MemoryStateStore()
    real = archive_deleted_rows._finish_api_cleanup
    calls = []

    def crash_once(*args: Any) -> None:
        calls.append(1)
        if len(calls) == 2:  # the first cleanup after a committed instances batch
            raise KeyboardInterrupt("killed")
        real(*args)

    monkeypatch.setattr(archive_deleted_rows, "_finish_api_cleanup", crash_once)
    with pytest.raises(KeyboardInterrupt):
        support.run(
            nova_bed,
            "archive_deleted_rows",
            mode="heal",
            before=FUTURE,
            state=state,
            cells=["cell1"],
        )
    pending = state.get(
        "nova_audit.archive_deleted_rows.api-cleanup." + support_cell_uuid(nova_bed)
    )
    assert pending and pending["uuids"]
    monkeypatch.setattr(archive_deleted_rows, "_finish_api_cleanup", real)
    support.run(
        nova_bed, "archive_deleted_rows", mode="heal", before=FUTURE, state=state, cells=["cell1"]
    )
    left = support.query(
        nova_bed.api_url,
        "SELECT COUNT(*) AS n FROM instance_mappings WHERE instance_uuid IN :u",
        u=tuple(pending["uuids"]),
    )
    assert left[0].n == 0


def support_cell_uuid(bed: Any, name: str = "cell1") -> str:
    return next(c.uuid for c in bed.cells if c.name == name)


def test_unreachable_cell_fails_alone(nova_bed: Any, tmp_path: Any) -> None:
    config = tmp_path / "nova-audit.conf"
    config.write_text(
        nova_bed.config_path.read_text()
        + "\n[audit.cells]\ncell2 = mysql+pymysql://natb:pw@127.0.0.1:1/nope\n"
    )
    report = support.run(
        nova_bed, "archive_deleted_rows", mode="heal", before=FUTURE, config_path=str(config)
    )
    assert report.cells_failed == ["cell2"] and report.code == Code.FAILURE
    assert old_deleted(support.cell_url(nova_bed, "cell1")) == 0
    assert old_deleted(support.cell_url(nova_bed, "cell2")) > 0


def test_bad_before_is_refused(nova_bed: Any) -> None:
    result = support.cli(
        "run",
        "archive_deleted_rows",
        "--config-file",
        str(nova_bed.config_path),
        "--mode",
        "heal",
        "--before",
        "last tuesday",
    )
    assert result.returncode == 2 and "before" in result.stdout + result.stderr


def test_purge_deletes_old_shadow_rows_in_chunks_like_nova(
    nova_bed: Any, nova_template: Any
) -> None:
    support.run(nova_bed, "archive_deleted_rows", mode="heal", before=FUTURE)
    archived = content(nova_bed)
    audit = support.run(nova_bed, "purge", mode="audit", before=FUTURE)
    assert audit.code == Code.WARNING and content(nova_bed) == archived
    report = support.run(nova_bed, "purge", mode="heal", before=FUTURE, batch_size=7)
    assert report.code == Code.OK and report.counts.fixed > 0
    # shadow_alembic_version never receives rows: no "not purged" line for it, run after run
    assert "not_purged" not in report.details, report.details
    ours = content(nova_bed)
    for cell in nova_bed.cells:
        shadows = support.query(cell.url, "SELECT COUNT(*) AS n FROM shadow_instances")
        assert shadows[0].n == 0

    testbed.reset(nova_bed, nova_template)
    support.run(nova_bed, "archive_deleted_rows", mode="heal", before=FUTURE)
    result = testbed.nova_manage(nova_bed, "db", "purge", "--before", FUTURE, "--all-cells")
    assert result.returncode == 0, result.stdout + result.stderr
    assert content(nova_bed) == ours


def test_foreign_key_from_an_unknown_table_skips_that_table_only(nova_bed: Any) -> None:
    """A table without a shadow twin still pointing at a deleted instance (local schema
    additions): like Nova, the instances table is left for later, and nothing breaks."""
    url = support.cell_url(nova_bed, "cell1")
    victim = support.query(url, "SELECT uuid FROM instances WHERE deleted != 0 LIMIT 1")[0].uuid
    support.execute(
        url,
        "CREATE TABLE local_notes (id INT PRIMARY KEY AUTO_INCREMENT, instance_uuid VARCHAR(36), "
        "FOREIGN KEY (instance_uuid) REFERENCES instances (uuid)) "
        "ENGINE=InnoDB DEFAULT CHARSET=utf8",
    )
    try:
        support.execute(url, "INSERT INTO local_notes (instance_uuid) VALUES (:u)", u=victim)
        counts = row_counts(url)
        report = support.run(
            nova_bed, "archive_deleted_rows", mode="heal", before=FUTURE, cells=["cell1"]
        )
        failed = [f for f in report.findings if f.status is Status.FAILED]
        assert [f.object_id for f in failed] == ["instances"]
        assert row_counts(url) == counts and duplicates(url) == {}
        assert report.details["rows"]["cell1"], "other tables were still archived"
    finally:
        support.execute(url, "DROP TABLE local_notes")
