"""`nova-audit run all` on a real test bed, through the real CLI.

Every enabled task runs once, in the documented order, and the exit code is
the worst task's. A task that fails (an unreachable Placement) or crashes (a
buggy task module standing in for a real one) never stops the tasks after it.
Audit mode writes nothing; a heal run leaves nothing for the next audit to fix.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import testbed
from nova_audit_ops import cli, registry, runner
from nova_audit_ops.engine.report import CRASH_EXIT_CODE, Code, Report
from tests import support
from tests.test_runner import config_path  # noqa: F401  (fixture: a SQLite API DB, 3 cells)

pytestmark = pytest.mark.timeout(600)
ORDER = [
    "preflight",
    "discover_hosts",
    "map_instances",
    "heal_instance_mappings",
    "heal_allocations",
    "orphaned_allocations",
    "sync_aggregates",
    "volume_attachments",
    "host_fault",
    "archive_deleted_rows",
    "purge_shadow_tables",
]
PLACEMENT_TASKS = {"heal_allocations", "orphaned_allocations", "sync_aggregates"}
DB_TASKS = ("discover_hosts", "map_instances", "heal_instance_mappings", "archive_deleted_rows")
DRIFT = {
    "unmapped_hosts": 2,
    "unmapped_instances": 3,
    "null_cell_mappings": 2,
    "missing_allocations": 2,
    "missing_aggregates": 1,
}


def run_all(config: str, *options: str) -> tuple[int, dict[str, Any]]:
    result = support.cli("run", "all", "--config-file", config, "--json", *options)
    assert "Traceback" not in result.stderr, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    assert data["code"] == result.returncode, result.stderr
    return result.returncode, data


def by_task(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {entry["task"]: entry for entry in data["tasks"]}


def drifted(data: dict[str, Any], task: str) -> int:
    return int(by_task(data)[task]["report"]["counts"]["drifted"])


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_the_order_covers_every_task_once() -> None:
    assert list(registry.SWEEP_ORDER) == ORDER
    assert sorted(registry.SWEEP_ORDER) == sorted(registry.TASKS)


def test_audit_writes_nothing_then_heal_leaves_nothing_to_fix(nova_bed_placement: Any) -> None:
    bed = nova_bed_placement
    for scenario, count in DRIFT.items():
        testbed.drift(bed, scenario, count)
    before = support.snapshot(bed), testbed.snapshot_placement(bed)

    code, audit = run_all(bed.config_path)
    assert (support.snapshot(bed), testbed.snapshot_placement(bed)) == before, "audit wrote"
    assert set(audit) == {"command", "mode", "code", "tasks"} and audit["mode"] == "configured"
    assert [t["task"] for t in audit["tasks"]] == ORDER
    for entry in audit["tasks"]:
        assert set(entry) == {"task", "state", "code", "note", "seconds", "report"}
    tasks = by_task(audit)
    assert tasks["host_fault"]["state"] == "skipped" and "hosts" in tasks["host_fault"]["note"]
    assert tasks["volume_attachments"]["state"] == "skipped"  # the bed's config has no [cinder]
    ran = [t for t in audit["tasks"] if t["state"] == "ran"]
    assert len(ran) == len(ORDER) - 2
    for entry in ran:
        report = Report.from_dict(entry["report"])
        assert report.task == entry["task"] and int(report.code) == entry["code"]
        assert report.mode == "audit" and entry["seconds"] > 0
    assert code == max(t["code"] for t in audit["tasks"]) >= Code.WARNING
    assert drifted(audit, "discover_hosts") == 2 and drifted(audit, "map_instances") == 3
    assert drifted(audit, "heal_allocations") >= 2

    code, heal = run_all(bed.config_path, "--mode", "heal")
    assert heal["mode"] == "heal" and code < Code.FAILURE, heal
    assert by_task(heal)["preflight"]["report"]["mode"] == "audit"  # --mode heal spared it
    assert by_task(heal)["discover_hosts"]["report"]["counts"]["fixed"] == 2

    code, again = run_all(bed.config_path, "--mode", "audit")
    for task in (*DB_TASKS, "heal_allocations", "sync_aggregates"):
        assert drifted(again, task) == 0, by_task(again)[task]
        assert by_task(again)[task]["code"] == Code.OK


def test_unreachable_placement_fails_its_tasks_while_the_others_run(
    nova_bed: Any, tmp_path: Path
) -> None:
    testbed.drift(nova_bed, "unmapped_hosts", 1)
    config = support.config_with(
        nova_bed,
        tmp_path,
        placement={"endpoint": f"http://127.0.0.1:{closed_port()}"},
        audit={"service_retries": "0"},
        **{"audit.purge_shadow_tables": {"enabled": "false"}},
    )
    before = support.snapshot(nova_bed)
    code, data = run_all(config)
    assert support.snapshot(nova_bed) == before
    assert [t["task"] for t in data["tasks"]] == ORDER, "a failure stopped the sweep"
    tasks = by_task(data)
    assert code == Code.FAILURE
    for task in PLACEMENT_TASKS:
        assert tasks[task]["code"] == Code.FAILURE
        report = tasks[task]["report"]
        problems = [f["problem"] for f in report["findings"] if f["status"] == "failed"]
        assert problems and all("Placement" in p for p in problems), problems
    assert tasks["discover_hosts"]["state"] == "ran" and drifted(data, "discover_hosts") == 1
    assert tasks["archive_deleted_rows"]["state"] == "ran", "a task after the failures ran"
    assert tasks["purge_shadow_tables"]["state"] == "skipped"
    assert "enabled = false" in tasks["purge_shadow_tables"]["note"]


class BuggyTask(SimpleNamespace):
    """A task module with a bug: its cells raise what no service or database raises."""

    def run_cell(self, ctx: Any, cell: Any) -> Report:
        raise TypeError("a bug in the task")


def test_a_crash_is_255_and_never_stops_the_tasks_after_it(
    nova_bed: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """In-process, so that one real task module can be replaced by a buggy one."""
    monkeypatch.setenv("COLUMNS", "100")  # a narrower terminal still gets 120 columns
    changes = testbed.drift(nova_bed, "unmapped_instances", 4)
    in_cell1 = str(sum(c["cell"] == "cell1" for c in changes))
    spec = registry.spec("discover_hosts")
    monkeypatch.setitem(registry.MODULES, spec.name, BuggyTask(SPEC=spec))
    before = support.snapshot(nova_bed)
    code = cli.main(["run", "all", "--config-file", bed_config(nova_bed), "--cell", "cell1"])
    out, err = capsys.readouterr()
    assert support.snapshot(nova_bed) == before
    assert code == CRASH_EXIT_CODE and "discover_hosts" in err and "please report it" in err
    summary = out.split("run all (configured mode)")[-1]
    rows = {line.split()[0]: line for line in summary.splitlines()[3:-1] if line[:1].strip()}
    assert list(rows) == ORDER
    assert rows["discover_hosts"].split()[1:3] == ["CRASH", "(255)"]
    assert rows["map_instances"].split()[1:5] == ["WARNING", "(1)", "10", in_cell1]  # it ran
    assert all(len(line) <= 120 for line in out.splitlines()), "the table is too wide"
    assert "cells checked: cell1\n" in out and "cell2" not in out  # --cell reached every task


def test_tasks_that_cannot_start_or_crash_before_their_cells_never_stop_the_others(
    config_path: str,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """No bed needed: an unknown cell stops every task before its first cell (exit 2
    each), and a bug before map_instances' first cell is a crash (255) of that task only."""
    open_context = runner.open_context

    def buggy_open_context(task: str, *args: Any, **kwargs: Any) -> Any:
        if task == "map_instances":
            raise RuntimeError("a bug before the first cell")
        return open_context(task, *args, **kwargs)

    monkeypatch.setattr(runner, "open_context", buggy_open_context)
    code = cli.main(["run", "all", "--config-file", config_path, "--json", "--cell", "nosuch"])
    out, err = capsys.readouterr()
    data = json.loads(out)
    assert code == data["code"] == CRASH_EXIT_CODE and "map_instances" in err
    assert [t["task"] for t in data["tasks"]] == ORDER
    states = {t["task"]: (t["state"], t["code"]) for t in data["tasks"]}
    assert states.pop("map_instances") == ("crashed", CRASH_EXIT_CODE)
    assert states.pop("host_fault")[0] == states.pop("volume_attachments")[0] == "skipped"
    assert set(states.values()) == {("failed", Code.FAILURE)}
    for entry in data["tasks"]:
        assert entry["report"] is None
        if entry["state"] == "failed":
            assert entry["note"].startswith("unknown cell 'nosuch'"), entry


@pytest.mark.parametrize(("columns", "width"), [("80", 120), ("200", 200)])
def test_tables_fit_120_columns_or_a_wider_terminal(
    monkeypatch: pytest.MonkeyPatch, columns: str, width: int
) -> None:
    monkeypatch.setenv("COLUMNS", columns)
    assert cli.terminal_width() == width


def bed_config(bed: Any) -> str:
    return str(bed.config_path)
