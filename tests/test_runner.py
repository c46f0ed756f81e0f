"""The runner is the one failure boundary: whatever a cell raises becomes its report.

A fake task module stands in for a real one in registry.MODULES (the runner
looks tasks up there); the API database is a small SQLite file with three
cell mappings, so no test bed is needed.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import requests
import sqlalchemy as sa
from keystoneauth1 import exceptions as ksa_exceptions
from sqlalchemy.exc import OperationalError

from nova_audit_ops import cli, registry, runner
from nova_audit_ops.clients.cinder import CinderDiscoveryError, CinderError
from nova_audit_ops.clients.compute import ComputeAPIError
from nova_audit_ops.clients.placement import PlacementError
from nova_audit_ops.engine.report import CRASH_EXIT_CODE, Code, Report
from nova_audit_ops.engine.state import MemoryStateStore
from nova_audit_ops.nova.cells import Cell
from nova_audit_ops.nova.flavors import FlavorError
from nova_audit_ops.settings.errors import ConfigError, NovaAuditError, ServiceError

TASK = "sync_aggregates"  # a real spec with a global step; its module is replaced
PASSWORD = "S3cret-cellpw"
CELLS = [
    (1, "00000000-0000-0000-0000-000000000000", "cell0"),
    (2, "11111111-1111-1111-1111-111111111111", "cell1"),
    (3, "22222222-2222-2222-2222-222222222222", "cell2"),
]


@pytest.fixture
def config_path(tmp_path: Path) -> str:
    """A config whose API database (SQLite) maps cell0, cell1 and cell2."""
    api = tmp_path / "api.db"
    engine = sa.create_engine(f"sqlite:///{api}")
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "CREATE TABLE cell_mappings (id INTEGER PRIMARY KEY, uuid VARCHAR(36), "
                "name VARCHAR(255), database_connection TEXT, transport_url TEXT, "
                "disabled BOOLEAN DEFAULT 0)"
            )
        )
        for cell_id, uuid, name in CELLS:
            url = f"mysql+pymysql://nova:{PASSWORD}@127.0.0.1:1/nova_{name}"
            conn.execute(
                sa.text("INSERT INTO cell_mappings VALUES (:i, :u, :n, :c, 'none:///', 0)"),
                {"i": cell_id, "u": uuid, "n": name, "c": url},
            )
    engine.dispose()
    path = tmp_path / "nova-audit.conf"
    path.write_text(
        f"[api_database]\nconnection = sqlite:///{api}\n\n[audit]\nstate_dir = {tmp_path}\n"
    )
    return str(path)


class FakeTask:
    """A task module: run_cell raises `errors[cell label]` or checks the cell."""

    def __init__(self, errors: dict[str, Callable[[], BaseException]]) -> None:
        self.errors = errors
        self.SPEC = registry.spec(TASK)
        self.ran: list[str] = []

    def run_cell(self, ctx: Any, cell: Any) -> Report:
        self.ran.append(cell.label)
        if isinstance(cell, Cell):
            ctx.engines.cell(cell)  # registers the cell's password (connects to nothing)
        if cell.label in self.errors:
            raise self.errors[cell.label]()
        report: Report = ctx.new_report()
        report.cells_checked.append(cell.label)
        return report

    def run_global(self, ctx: Any, cells: Any) -> Report:
        return self.run_cell(ctx, SimpleNamespace(label="global", uuid="global"))


@pytest.fixture
def install(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., FakeTask]]:
    def _install(**errors: Callable[[], BaseException]) -> FakeTask:
        fake = FakeTask(errors)
        monkeypatch.setitem(registry.MODULES, TASK, fake)
        return fake

    yield _install


def run(config_path: str) -> Report:
    cfg = registry.load_config(config_path)
    ctx = runner.open_context(TASK, cfg, {}, state=MemoryStateStore())
    try:
        return runner.run_all(ctx)
    finally:
        ctx.engines.dispose()


def _db_error() -> BaseException:
    return OperationalError("SELECT 1", {}, Exception(f"Access denied (using {PASSWORD})"))


EXPECTED = [
    pytest.param(
        lambda: PlacementError(500, "boom"), "Placement returned 500: boom", id="placement"
    ),
    pytest.param(
        lambda: ComputeAPIError(409, "busy"), "Nova API returned 409: busy", id="nova-api"
    ),
    pytest.param(lambda: CinderError("refused", 403), "refused", id="cinder"),
    pytest.param(lambda: CinderDiscoveryError("no volumev3"), "no volumev3", id="cinder-catalog"),
    pytest.param(lambda: FlavorError("instance_extra.flavor is empty"), "flavor", id="flavor"),
    pytest.param(lambda: ConfigError(f"bad {PASSWORD}"), "bad ***", id="config-scrubbed"),
    pytest.param(_db_error, "cell1 database at mysql+pymysql://nova:***@", id="database"),
    pytest.param(
        lambda: ksa_exceptions.ConnectFailure("Unable to establish connection to http://p"),
        "ConnectFailure: Unable to establish connection",
        id="ksa-connect",
    ),
    pytest.param(
        lambda: ksa_exceptions.ConnectTimeout("Request to http://p timed out"),
        "ConnectTimeout: Request to http://p timed out",
        id="ksa-timeout",
    ),
    pytest.param(
        lambda: requests.ConnectionError("Connection aborted.\nreset by peer"),
        "ConnectionError: Connection aborted. reset by peer",
        id="requests-one-line",
    ),
    pytest.param(lambda: PermissionError(13, "Permission denied"), "Permission", id="oserror"),
]


@pytest.mark.parametrize(("error", "message"), EXPECTED)
def test_expected_failure_fails_its_cell_and_the_others_run(
    config_path: str, install: Callable[..., FakeTask], error: Any, message: str
) -> None:
    fake = install(cell1=error)
    report = run(config_path)
    assert fake.ran == ["cell1", "cell2", "global"]  # cell0 skipped by the spec
    assert report.cells_failed == ["cell1"]
    assert report.cells_checked == ["cell2", "global"]
    assert report.code == Code.FAILURE
    assert runner.crashes(report) == 0 and "crashes" not in report.details
    [failed] = [f for f in report.findings if f.kind == "cell"]
    assert message in failed.problem and "\n" not in failed.problem
    assert PASSWORD not in json.dumps(report.to_dict())
    assert failed.fix == f"fix the cause, then rerun {TASK}"


def test_service_errors_keep_their_status_and_are_nova_audit_errors() -> None:
    for error in (PlacementError(503, "x"), ComputeAPIError(404, "y"), CinderError("z", 400)):
        assert isinstance(error, ServiceError) and isinstance(error, NovaAuditError)
        assert error.status in (503, 404, 400)
    assert CinderError("no status").status is None
    assert issubclass(FlavorError, NovaAuditError) and issubclass(
        CinderDiscoveryError, NovaAuditError
    )


def test_a_bug_is_contained_counted_and_logged_scrubbed(
    config_path: str, install: Callable[..., FakeTask], caplog: pytest.LogCaptureFixture
) -> None:
    fake = install(cell1=lambda: KeyError(f"uuid {PASSWORD}"))
    with caplog.at_level(logging.ERROR, logger="nova_audit"):
        report = run(config_path)
    assert fake.ran == ["cell1", "cell2", "global"]
    assert report.cells_failed == ["cell1"] and report.code == Code.FAILURE
    assert report.details["crashes"] == 1 == runner.crashes(report)
    [failed] = [f for f in report.findings if f.kind == "cell"]
    assert failed.problem.startswith("nova-audit bug, cell1 not finished: KeyError:")
    assert "report this bug" in (failed.fix or "")
    assert "Traceback (most recent call last)" in caplog.text and "run_cell" in caplog.text
    assert PASSWORD not in caplog.text and PASSWORD not in json.dumps(report.to_dict())


def test_crashes_of_cells_and_the_global_step_add_up(
    config_path: str, install: Callable[..., FakeTask]
) -> None:
    install(cell2=lambda: ZeroDivisionError("division by zero"), **{"global": AttributeError})
    report = run(config_path)
    assert report.cells_failed == ["cell2", "global"] and report.cells_checked == ["cell1"]
    assert runner.crashes(report) == 2
    assert Report.from_dict(report.to_dict()).details["crashes"] == 2  # survives XCom


def test_orchestrator_interrupts_are_not_contained(
    config_path: str, install: Callable[..., FakeTask]
) -> None:
    """BaseExceptions (Ctrl-C, Airflow's task timeout and SIGTERM) still stop the run."""
    fake = install(cell1=KeyboardInterrupt)
    with pytest.raises(KeyboardInterrupt):
        run(config_path)
    assert fake.ran == ["cell1"]


# --------------------------------------------------------------------------- CLI


def _cli(config_path: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict, str]:
    code = cli.main(["run", TASK, "--config-file", config_path, "--json"])
    out, err = capsys.readouterr()
    return code, json.loads(out), err


@pytest.mark.parametrize(
    ("errors", "exit_code"),
    [
        pytest.param({}, int(Code.OK), id="clean"),
        pytest.param({"cell1": lambda: PlacementError(500, "boom")}, 2, id="service-error"),
        pytest.param({"cell2": lambda: OSError("disk full")}, 2, id="oserror"),
        pytest.param({"cell1": lambda: TypeError("bad")}, CRASH_EXIT_CODE, id="bug"),
        pytest.param({"global": lambda: TypeError("bad")}, CRASH_EXIT_CODE, id="global-bug"),
    ],
)
def test_cli_exits_255_only_for_a_bug_and_always_prints_the_report(
    config_path: str,
    install: Callable[..., FakeTask],
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    errors: dict[str, Any],
    exit_code: int,
) -> None:
    fake = install(**errors)
    code, data, err = _cli(config_path, capsys)
    assert code == exit_code
    assert fake.ran == ["cell1", "cell2", "global"]
    assert data["task"] == TASK and set(data["cells_checked"]) | set(data["cells_failed"]) == {
        "cell1",
        "cell2",
        "global",
    }
    if exit_code == CRASH_EXIT_CODE:
        assert data["details"]["crashes"] == 1 and "bug" in err
        assert "Traceback (most recent call last)" in caplog.text  # stderr, outside pytest
    else:
        assert "Traceback" not in err + caplog.text


def test_cli_database_failure_outside_the_runner_is_an_error_not_a_crash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`cells` reads cell_mappings from a database that refuses: exit 2, one ERROR line."""
    path = tmp_path / "nova-audit.conf"
    path.write_text(
        f"[api_database]\nconnection = mysql+pymysql://nova:{PASSWORD}@127.0.0.1:1/nova_api\n"
    )
    code = cli.main(["cells", "--config-file", str(path)])
    err = capsys.readouterr().err
    assert code == int(Code.FAILURE)
    assert err.startswith("ERROR: database error (OperationalError)") and err.count("\n") == 1
    assert PASSWORD not in err and "Traceback" not in err
