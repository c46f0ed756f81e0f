"""One writer per task and cell: the runner's named lock, on the MariaDB test bed."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from nova_audit_ops import runner
from nova_audit_ops.clients.locks import LOCK_PREFIX, mysql_lock_name, named_lock
from nova_audit_ops.engine.report import Code, Report
from nova_audit_ops.settings.errors import LockBusyError
from nova_audit_ops.tasks import map_instances
from tests import support

TASK = "map_instances"


def unmap_one(bed: Any, cell: str) -> str:
    """Delete the instance mapping of one live instance of `cell`; return its uuid."""
    row = support.query(
        support.cell_url(bed, cell),
        "SELECT uuid FROM instances WHERE deleted = 0 ORDER BY id LIMIT 1",
    )[0]
    support.execute(
        bed.api_url, "DELETE FROM instance_mappings WHERE instance_uuid = :u", u=row.uuid
    )
    return str(row.uuid)


def mapped(bed: Any, instance_uuid: str) -> int:
    rows = support.query(
        bed.api_url,
        "SELECT COUNT(*) AS n FROM instance_mappings WHERE instance_uuid = :u",
        u=instance_uuid,
    )
    return int(rows[0].n)


class Paused:
    """A first run of map_instances held inside its cell (lock taken) until released."""

    def __init__(self, bed: Any, monkeypatch: pytest.MonkeyPatch, cell: str) -> None:
        self.inside, self.release = threading.Event(), threading.Event()
        self.report: Report | None = None
        original: Callable[..., Report] = map_instances.run_cell

        def held(ctx: Any, cell_: Any) -> Report:
            if threading.current_thread() is not self.thread:
                return original(ctx, cell_)  # the other run is not paused
            self.inside.set()
            assert self.release.wait(30), "the paused run was never released"
            return original(ctx, cell_)

        monkeypatch.setattr(map_instances, "run_cell", held)
        self.thread = threading.Thread(target=self._run, args=(bed, cell), daemon=True)

    def _run(self, bed: Any, cell: str) -> None:
        self.report = support.run(bed, TASK, mode="heal", cells=[cell])

    def __enter__(self) -> Paused:
        self.thread.start()
        assert self.inside.wait(60), "the first run never reached its cell"
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.thread.join(60)


@pytest.fixture
def quick(nova_bed: Any, tmp_path: Path) -> Iterator[str]:
    """A config whose heal runs do not wait for another run's lock."""
    yield support.config_with(nova_bed, tmp_path, audit={"task_lock_wait": "0"})


def test_second_run_on_the_same_cell_reports_the_holder(
    nova_bed: Any, quick: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    lost = unmap_one(nova_bed, "cell1")
    with Paused(nova_bed, monkeypatch, "cell1") as first:
        second = support.run(nova_bed, TASK, mode="heal", cells=["cell1"], config_path=quick)
    assert second.code == Code.FAILURE and second.details.get(runner.CRASHES) is None
    (finding,) = second.findings
    assert finding.kind == "cell" and finding.object_id == "cell1"
    assert f"{TASK}." in finding.problem and "held by another run" in finding.problem
    assert "connection " in finding.problem and "@" in finding.problem  # the holder
    assert finding.fix is not None and "let it finish, then rerun" in finding.fix
    assert first.report is not None and first.report.code != Code.FAILURE
    assert [f.object_id for f in first.report.findings] == [lost]
    assert mapped(nova_bed, lost) == 1
    before = support.snapshot(nova_bed)
    again = support.run(nova_bed, TASK, mode="heal", cells=["cell1"])
    assert again.findings == [] and support.snapshot(nova_bed) == before  # as one run


def test_different_cells_do_not_block_each_other(
    nova_bed: Any, quick: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    lost = unmap_one(nova_bed, "cell2")
    with Paused(nova_bed, monkeypatch, "cell1"):
        other = support.run(nova_bed, TASK, mode="heal", cells=["cell2"], config_path=quick)
    assert other.cells_failed == [] and [f.object_id for f in other.findings] == [lost]
    assert mapped(nova_bed, lost) == 1


def test_audit_runs_take_no_lock(
    nova_bed: Any, quick: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    lost = unmap_one(nova_bed, "cell1")
    with Paused(nova_bed, monkeypatch, "cell1"):
        audit = support.run(nova_bed, TASK, mode="audit", cells=["cell1"], config_path=quick)
    assert audit.cells_failed == [] and [f.object_id for f in audit.findings] == [lost]


def test_global_step_has_its_own_lock(nova_bed: Any, quick: str) -> None:
    global_lock = runner.lock_name("heal_instance_mappings", runner.GLOBAL)
    with support.engine(nova_bed.api_url) as engine, named_lock(engine, global_lock, 0):
        report = support.run(nova_bed, "heal_instance_mappings", mode="heal", config_path=quick)
    assert report.cells_failed == [runner.GLOBAL]
    assert report.details.get(runner.CRASHES) is None


def test_long_lock_names_are_hashed_and_still_exclusive(nova_bed: Any) -> None:
    name = "heal_instance_mappings." + "0" * 36
    assert len(mysql_lock_name(LOCK_PREFIX + name)) == 64
    with support.engine(nova_bed.api_url) as engine:
        with named_lock(engine, name, 0):
            busy = pytest.raises(LockBusyError, match="connection")
            with busy, named_lock(engine, name, 0):
                pass
        with named_lock(engine, name, 0):
            pass  # released


def test_locks_of_another_api_database_on_the_same_server_do_not_exclude(nova_bed: Any) -> None:
    """GET_LOCK is server-wide: two clouds (or beds) sharing a server lock apart."""
    name = runner.lock_name("map_instances", runner.GLOBAL)
    other = nova_bed.cells[0].url  # another database on the same MariaDB server
    with (
        support.engine(nova_bed.api_url) as api,
        support.engine(other) as elsewhere,
        named_lock(api, name, 0),
        named_lock(elsewhere, name, 0),
        pytest.raises(LockBusyError),
        named_lock(api, name, 0),
    ):
        pass
