"""The replication-lag guard against a real MariaDB primary and replica (testbed/replication).

cell1's database is copied onto the primary (the system MariaDB has no binlog)
and the bed's config points cell1 there ([audit.cells]) and watches the replica
([audit] replica_connections, a URL with a password). Lag is made as it happens:
`FLUSH TABLES WITH READ LOCK` on the replica holds its SQL thread back while
the primary goes on writing.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from nova_audit_ops import registry
from nova_audit_ops.engine.report import Code, Status
from nova_audit_ops.engine.state import MemoryStateStore
from nova_audit_ops.settings.errors import ConfigError
from testbed import replication
from testbed.snapshot import snapshot_tables
from tests import support

CELL = "cell1"
DB = "nat_repl_cell1"


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[replication.Pair]:
    started = replication.start(tmp_path / "repl")
    try:
        yield started
    finally:
        replication.stop(started)


@pytest.fixture
def primary_cell(nova_bed: Any, pair: replication.Pair) -> str:
    """cell1 on the primary, with its instances soft-deleted long ago; the primary's URL."""
    url = support.cell_url(nova_bed, CELL)
    support.execute(
        url,
        "UPDATE instances SET deleted = id, deleted_at = :w, vm_state = 'deleted' "
        "WHERE deleted = 0",
        w=dt.datetime(2020, 1, 1),
    )
    primary = pair.primary_url(DB)
    replication.copy_database(url, primary)
    replication.wait_caught_up(pair)
    return primary


def config(nova_bed: Any, pair: replication.Pair, primary: str, tmp_path: Path, **more: str) -> str:
    return support.config_with(
        nova_bed,
        tmp_path,
        audit={"replica_connections": pair.watch_url, "replica_poll": "1", **more},
        **{"audit.cells": {CELL: primary}},
    )


def archive(nova_bed: Any, path: str, state: Any = None, **params: Any) -> Any:
    return support.run(
        nova_bed,
        "archive_deleted_rows",
        config_path=path,
        state=state,
        cells=[CELL],
        before="2021-01-01",
        batch_size=40,
        **params,
    )


def archived(primary: str) -> int:
    return int(support.query(primary, "SELECT COUNT(*) AS n FROM shadow_instances")[0].n)


class ReplicaLock:
    """FLUSH TABLES WITH READ LOCK on the replica, then one write on the primary: the
    replica's SQL thread waits, and its Seconds_Behind_Master grows."""

    def __init__(self, pair: replication.Pair) -> None:
        self.engine = sa.create_engine(pair.replica_url(), poolclass=sa.pool.NullPool)
        self.conn = self.engine.connect()
        self.conn.execute(sa.text("FLUSH TABLES WITH READ LOCK"))
        replication.execute(
            pair.primary_url(DB),
            "CREATE TABLE IF NOT EXISTS lag_probe (id INT PRIMARY KEY)",
            "INSERT INTO lag_probe VALUES (1)",
        )
        self.released_at: float | None = None

    def wait_for_lag(self, pair: replication.Pair, seconds: int) -> None:
        end = time.monotonic() + 30
        while time.monotonic() < end:
            lag = replication.slave_status(pair)["Seconds_Behind_Master"]
            if lag is not None and int(str(lag)) >= seconds:
                return
            time.sleep(0.2)
        raise AssertionError("the replica did not fall behind")

    def release(self) -> None:
        if self.released_at is None:
            self.conn.execute(sa.text("UNLOCK TABLES"))
            self.released_at = time.monotonic()
            self.conn.close()
            self.engine.dispose()


def test_guard_pauses_a_real_archive_until_the_replica_catches_up(
    nova_bed: Any, pair: replication.Pair, primary_cell: str, tmp_path: Path
) -> None:
    path = config(nova_bed, pair, primary_cell, tmp_path)
    expected = int(
        support.query(
            primary_cell,
            "SELECT COUNT(*) AS n FROM instances WHERE deleted != 0 AND deleted_at < '2021-01-01'",
        )[0].n
    )
    assert expected >= 8
    lock = ReplicaLock(pair)
    lock.wait_for_lag(pair, 2)
    first_row_at: list[float] = []

    def watch() -> None:  # when did the first row reach a shadow table?
        while not first_row_at and time.monotonic() < started + 60:
            if archived(primary_cell):
                first_row_at.append(time.monotonic())
            time.sleep(0.05)

    started = time.monotonic()
    watcher = threading.Thread(target=watch)
    watcher.start()
    timer = threading.Timer(3.0, lock.release)
    timer.start()
    try:
        report = archive(nova_bed, path, mode="heal", max_replica_lag=1)
    finally:
        timer.cancel()
        lock.release()
        watcher.join()
    assert report.code == Code.OK, report.findings
    assert not report.more_work
    waited = report.details["pacing"][CELL]["replica_wait_s"]
    assert waited >= 2, "the guard must have waited for the lagging replica"
    assert lock.released_at is not None and first_row_at
    assert first_row_at[0] >= lock.released_at, "rows moved while the replica lagged"
    assert archived(primary_cell) == expected
    replication.wait_caught_up(pair)
    on_replica = pair.replica_url(DB)
    assert int(support.query(on_replica, "SELECT COUNT(*) AS n FROM shadow_instances")[0].n) == (
        expected
    )


def test_deadline_stops_with_more_work_and_a_finding_naming_the_replica(
    nova_bed: Any, pair: replication.Pair, primary_cell: str, tmp_path: Path
) -> None:
    path = config(nova_bed, pair, primary_cell, tmp_path)
    lock = ReplicaLock(pair)
    state = MemoryStateStore()
    try:
        lock.wait_for_lag(pair, 2)
        report = archive(nova_bed, path, state, mode="heal", max_replica_lag=1, time_budget=3)
        assert archived(primary_cell) == 0, "nothing may move while the replica lags"
    finally:
        lock.release()
    assert report.more_work and report.code == Code.WARNING
    [finding] = [f for f in report.findings if f.kind == "replica"]
    assert finding.status is Status.LEFT and finding.cell == CELL
    assert f"127.0.0.1:{pair.replica.port}" in finding.object_id
    assert "behind its primary" in finding.problem and "max_replica_lag = 1" in finding.problem
    assert finding.fix and "max_replica_lag" in finding.fix
    assert pair.watch_password not in json.dumps(report.to_dict())
    replication.wait_caught_up(pair)
    again = archive(nova_bed, path, state, mode="heal", max_replica_lag=1)
    assert again.code == Code.OK and not again.more_work
    assert archived(primary_cell) > 0


def test_stopped_replication_is_named_and_nothing_is_written(
    nova_bed: Any, pair: replication.Pair, primary_cell: str, tmp_path: Path
) -> None:
    path = config(nova_bed, pair, primary_cell, tmp_path)
    replication.execute(pair.replica_url(), "STOP SLAVE")
    before = snapshot_tables(primary_cell)
    report = archive(nova_bed, path, mode="heal", max_replica_lag=5, time_budget=2)
    assert snapshot_tables(primary_cell) == before
    assert report.more_work and report.code == Code.FAILURE
    [finding] = [f for f in report.findings if f.kind == "replica"]
    assert finding.status is Status.FAILED
    assert "replication stopped" in finding.problem and "NULL" in finding.problem
    assert finding.fix and "START SLAVE" in finding.fix


def test_unreachable_replica_stops_purge_and_map_instances_without_writing(
    nova_bed: Any, pair: replication.Pair, primary_cell: str, tmp_path: Path
) -> None:
    gone = "mysql+pymysql://watch:gone-secret-123@127.0.0.1:1/"
    path = support.config_with(
        nova_bed,
        tmp_path,
        audit={"replica_poll": "1"},
        **{"audit.cells": {CELL: primary_cell}, "audit.replicas": {CELL: gone}},
    )
    # Work for map_instances: three of cell1's mappings are missing.
    support.execute(
        nova_bed.api_url,
        "DELETE FROM instance_mappings WHERE cell_id = "
        "(SELECT id FROM cell_mappings WHERE name = :c) LIMIT 3",
        c=CELL,
    )
    for task, more in (("map_instances", {}), ("purge_shadow_tables", {"before": "2100-01-01"})):
        if task == "purge_shadow_tables":  # work for purge: rows in the shadow tables
            archive(nova_bed, path, mode="heal")  # max_replica_lag 0: not guarded
            assert archived(primary_cell)
        cell_before = snapshot_tables(primary_cell)
        api_before = snapshot_tables(nova_bed.api_url)
        report = support.run(
            nova_bed,
            task,
            config_path=path,
            cells=[CELL],
            mode="heal",
            max_replica_lag=5,
            time_budget=2,
            **more,
        )
        assert report.more_work, task
        [finding] = [f for f in report.findings if f.kind == "replica"]
        assert finding.status is Status.FAILED and "cannot be reached" in finding.problem
        assert "gone-secret-123" not in json.dumps(report.to_dict())
        assert snapshot_tables(nova_bed.api_url) == api_before, f"{task} wrote blindly"
        assert snapshot_tables(primary_cell) == cell_before, f"{task} wrote blindly"


def test_audit_mode_never_waits_and_writes_nothing(
    nova_bed: Any, pair: replication.Pair, primary_cell: str, tmp_path: Path
) -> None:
    path = config(nova_bed, pair, primary_cell, tmp_path)
    lock = ReplicaLock(pair)
    try:
        lock.wait_for_lag(pair, 2)
        before = snapshot_tables(primary_cell)
        report = archive(nova_bed, path, mode="audit", max_replica_lag=1)
        assert snapshot_tables(primary_cell) == before
    finally:
        lock.release()
    assert report.code == Code.WARNING and not report.more_work
    assert not [f for f in report.findings if f.kind == "replica"]
    assert "pacing" not in report.details


def test_replica_urls_are_masked_in_config_errors(nova_bed: Any, tmp_path: Path) -> None:
    path = support.config_with(
        nova_bed, tmp_path, audit={"replica_connections": "not a url with s3cret-pw"}
    )
    with pytest.raises(ConfigError) as caught:
        registry.load_config(path)
    assert "s3cret-pw" not in str(caught.value)
    assert "replica_connections" in str(caught.value)
