"""The nova-audit page from real reports: per-cell results, open findings, chart links, auth.

The browser test against a running Airflow is tests/dags/test_scheduler.py's.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from nova_audit_ops.clients import secrets
from nova_audit_ops.engine.report import Finding, Report, Status
from nova_audit_ops.glue.page import data, render

UTC = dt.timezone.utc
NOW = dt.datetime(2026, 6, 30, 12, 0, tzinfo=UTC)
SINCE = NOW - dt.timedelta(days=data.DAYS)
DAG = "nova_audit_discover_hosts"
FIX = "nova-audit run discover_hosts --mode heal --cells cell1"


def _host(status: Status, cell: str = "cell1", problem: str = "compute host not mapped") -> Finding:
    return Finding("host", f"{cell}-host2", problem, "map host", status, cell=cell, fix=FIX)


def _run(hours_ago: int, mode: str, cells: list[str], *findings: Finding, **kw: Any) -> Any:
    report = Report(task="discover_hosts", mode=mode, cells_checked=list(cells))
    for finding in findings:
        report.add(finding)
    when = NOW - dt.timedelta(hours=hours_ago)
    return data.RunRecord(
        DAG, f"manual__{when.isoformat()}", kw.get("state", "success"), when, report
    )


def run_url(run: data.RunRecord) -> str:
    return f"/dags/{run.dag_id}/runs/{run.run_id}"


def _results(page: data.PageData) -> dict[str, str]:
    return {c.cell: c.result for c in page.cells}


def test_audit_then_heal_then_one_cell_only() -> None:
    audit = _run(30, "audit", ["cell1", "cell2"], _host(Status.WOULD_FIX))
    page = data.build([audit], SINCE, NOW)
    assert _results(page) == {"cell1": data.DRIFT_LEFT, "cell2": data.OK}
    [cell1, _] = page.cells
    assert [f.fix for f in cell1.open_findings] == [FIX]
    assert page.last_runs["discover_hosts"].result == data.DRIFT_LEFT

    heal = _run(20, "heal", ["cell1", "cell2"], _host(Status.FIXED))
    only_cell2 = _run(10, "audit", ["cell2"])
    page = data.build([only_cell2, heal, audit], SINCE, NOW)  # any order
    assert _results(page) == {"cell1": data.HEALED, "cell2": data.OK}
    assert page.cells[0].run == heal and page.cells[1].run == only_cell2
    assert [r.result for r in page.history["discover_hosts"]] == [
        data.DRIFT_LEFT, data.HEALED, data.OK,
    ]  # fmt: skip


def test_drift_outside_any_cell_is_cleared_by_a_later_clean_run() -> None:
    """Findings of the global step carry no checked cell; a later run without them is clean."""
    unmapped = Finding("aggregate", "agg1", "missing in Placement", "add", Status.WOULD_FIX)
    audit = _run(30, "audit", ["cell1"], unmapped)
    heal = _run(20, "heal", ["cell1"], Finding("aggregate", "agg1", "x", "added", Status.FIXED))
    clean = _run(10, "audit", ["cell1"])
    assert _results(data.build([audit], SINCE, NOW))[data.GLOBAL_CELL] == data.DRIFT_LEFT
    assert _results(data.build([audit, heal], SINCE, NOW))[data.GLOBAL_CELL] == data.HEALED
    page = data.build([clean, heal, audit], SINCE, NOW)
    assert _results(page) == {"cell1": data.OK, data.GLOBAL_CELL: data.OK}
    [global_result] = [c for c in page.cells if c.cell == data.GLOBAL_CELL]
    assert global_result.run == clean and not global_result.open_findings


def test_failures_a_cell_not_checked_a_run_without_summary_and_global_findings() -> None:
    report = Report(task="discover_hosts", mode="heal", cells_checked=["cell2"])
    report.cell_failed("cell1", "cell database unreachable", "check cell1's database_connection")
    report.add(Finding("host", "h", "left alone", "none", Status.MUST_NOT_FIX, cell=None))
    run = data.RunRecord(DAG, "manual__1", "success", NOW, report)
    assert _results(data.build([run], SINCE, NOW)) == {
        "cell1": data.FAILED, "cell2": data.OK, data.GLOBAL_CELL: data.FAILED,
    }  # fmt: skip
    broken = data.RunRecord(DAG, "manual__2", "failed", NOW + dt.timedelta(minutes=1), None)
    page = data.build([run, broken], SINCE, NOW)
    assert page.last_runs["discover_hosts"].result == data.FAILED
    assert "no summary report" in render.page(page, run_url)


def test_the_page_shows_task_cell_finding_fix_and_links_every_point() -> None:
    runs = [
        _run(30, "audit", ["cell1", "cell2"], _host(Status.WOULD_FIX)),
        _run(20, "audit", ["cell1", "cell2"], _host(Status.WOULD_FIX), _host(Status.LEFT, "cell2")),
    ]
    html = render.page(data.build(runs, SINCE, NOW), run_url)
    assert 'data-task="discover_hosts" data-cell="cell1" data-result="drift left"' in html
    assert "compute host not mapped" in html and f"<code>{FIX}</code>" in html
    for run in runs:  # two series, a link on every point
        assert html.count(f'href="{run_url(run)}" target="_top" data-series=') == 2
    assert "<script" not in html
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in html


def test_no_secret_reaches_the_page_or_the_json() -> None:
    secrets.register("hunter2-page")
    leaky = _host(Status.WOULD_FIX, problem="mysql+pymysql://nova:pa55w0rd@db/nova hunter2-page")
    page = data.build([_run(1, "audit", ["cell1"], leaky)], SINCE, NOW)
    html = render.page(page, run_url)
    from nova_audit_ops.glue.page import safe

    body = json.dumps(safe.tree(data.to_json(page, run_url)))
    for text in (html, body):
        assert "pa55w0rd" not in text and "hunter2-page" not in text
        assert "mysql+pymysql://nova:***@db/nova" in text


def test_a_capped_report_says_so_per_cell() -> None:
    findings = [_host(Status.WOULD_FIX, problem=f"p{i}") for i in range(3)]
    report = Report.from_dict(_run(1, "audit", ["cell1", "cell2"], *findings).report.to_dict(2))
    page = data.build([data.RunRecord(DAG, "r", "success", NOW, report)], SINCE, NOW)
    assert [(c.cell, c.capped) for c in page.cells] == [("cell1", True), ("cell2", True)]
    html = render.page(page, run_url)
    assert html.count("(capped: see the log)") == 2
    assert "1 more finding(s) were not kept" in html


def test_the_json_has_the_same_data() -> None:
    runs = [_run(2, "audit", ["cell1"], _host(Status.WOULD_FIX)), _run(1, "heal", ["cell1"])]
    out = json.loads(json.dumps(data.to_json(data.build(runs, SINCE, NOW), run_url)))
    [cell] = out["cells"]
    assert (cell["task"], cell["cell"], cell["result"]) == ("discover_hosts", "cell1", data.OK)
    assert [r["findings"] for r in out["history"]["discover_hosts"]] == [1, 0]
    assert out["history"]["discover_hosts"][0]["url"] == run_url(runs[0])


def test_a_bad_summary_xcom_is_no_report() -> None:
    good = Report(task="t", mode="audit").to_dict()
    assert data.parse_report(json.dumps(json.dumps(good))) is not None
    assert data.parse_report('{"not": "a report"}') is None
    assert data.parse_report(None) is None


class FakeAuthManager:
    """Answers like an auth manager that lets `user` read DAGs but maybe not their runs."""

    def __init__(self, may_read_runs: bool) -> None:
        self.may_read_runs = may_read_runs

    async def get_user_from_token(self, token: str) -> str:
        if token != "good":
            from jwt import InvalidTokenError

            raise InvalidTokenError("bad token")
        return "user"

    def get_authorized_dag_ids(self, *, user: str, method: str) -> set[str]:
        return {DAG, "other_dag"}

    def is_authorized_dag(
        self, *, method: str, access_entity: Any, details: Any, user: str
    ) -> bool:
        return self.may_read_runs and details.id == DAG


@pytest.mark.parametrize(
    ("headers", "may_read_runs", "expected"),
    [
        pytest.param({}, True, 401, id="anonymous"),
        pytest.param({"Authorization": "Bearer forged"}, True, 403, id="bad token"),
        pytest.param({"Authorization": "Bearer good"}, False, 403, id="may not read runs"),
        pytest.param({"Authorization": "Bearer good"}, True, 200, id="allowed"),
    ],
)
def test_every_route_needs_authentication_and_authorization(
    monkeypatch: pytest.MonkeyPatch, headers: dict[str, str], may_read_runs: bool, expected: int
) -> None:
    import airflow.api_fastapi.app
    from fastapi.testclient import TestClient

    from nova_audit_ops.glue.page import app as page_app

    manager = FakeAuthManager(may_read_runs)
    monkeypatch.setattr(airflow.api_fastapi.app, "get_auth_manager", lambda: manager)
    asked: list[list[str]] = []

    def load_runs(session: Any, dag_ids: list[str], since: dt.datetime) -> list[Any]:
        asked.append(list(dag_ids))
        return [_run(1, "audit", ["cell1"], _host(Status.WOULD_FIX))]

    monkeypatch.setattr(data, "load_runs", load_runs)
    client = TestClient(page_app.app)
    for path in ("/", "/api/summary"):
        assert client.get(path, headers=headers).status_code == expected
    if expected == 200:
        assert asked == [[DAG], [DAG]]  # only nova_audit DAGs the user may read
        assert client.get("/api/summary", headers=headers).json()["cells"][0]["cell"] == "cell1"


def test_the_plugin_mounts_the_page_and_links_it_without_importing_fastapi_elsewhere() -> None:
    import subprocess
    import sys

    from nova_audit_ops.glue.page import URL_PREFIX
    from nova_audit_ops.glue.page.app import app
    from nova_audit_ops.glue.plugin import NovaAuditPlugin

    [mounted] = list(NovaAuditPlugin.fastapi_apps)
    assert mounted["app"] is app and mounted["url_prefix"] == URL_PREFIX
    [view] = NovaAuditPlugin.external_views
    assert view["href"] == "nova-audit/" == URL_PREFIX[1:] + "/" and view["destination"] == "nav"
    code = "import sys, nova_audit_ops.glue.plugin; print('fastapi' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"  # only the api-server, iterating fastapi_apps, pays
