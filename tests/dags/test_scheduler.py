"""The DAGs under a running Airflow (api-server, dag-processor, scheduler), as operators use them.

`airflow dags test` runs one DAG in one process; here the scheduler does the
work: a backfill of three missed maintenance windows of the archive DAG, the
Asset-triggered purge runs that follow, a manual trigger refused for a bad
param, and host_fault runs an external monitor triggers through the REST API.
One stack for the whole module: it takes about 20 s to start.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import time
from collections.abc import Iterator
from typing import Any

import pytest

from nova_audit_ops.engine.report import Code, Status
from testbed import airflow_stack
from tests import support
from tests.tasks.test_archive_deleted_rows import delete_instances

pytestmark = pytest.mark.timeout(600)
ARCHIVE, PURGE = "nova_audit_archive_deleted_rows", "nova_audit_purge_shadow_tables"
UTC = dt.timezone.utc


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[airflow_stack.AirflowStack]:
    with airflow_stack.running(tmp_path_factory.mktemp("airflow-stack")) as running:
        yield running


def test_backfill_of_missed_windows_and_the_asset_chain(
    stack: airflow_stack.AirflowStack, nova_bed: Any, tmp_path: Any
) -> None:
    """Three archive runs, two cells archiving in each: the purge DAG, never unpaused by
    hand, follows in heal mode with only the config change docs/airflow.md names, and
    each archive run's events start one purge run between them (not one per cell)."""
    sections = {
        f"audit.{t}": {"mode": "heal"} for t in ("archive_deleted_rows", "purge_shadow_tables")
    }
    shutil.copy(support.config_with(nova_bed, tmp_path, **sections), stack.config_path)
    stack.wait_for_dags([ARCHIVE, PURGE])
    stack.airflow("dags", "reserialize")  # the param defaults now come from that config
    support.run(nova_bed, "archive_deleted_rows", mode="heal", before="2026-01-01")
    support.run(nova_bed, "purge_shadow_tables", mode="heal", before="2100-01-01")
    window_ends = [dt.datetime(2026, 5, day, 5, 0, tzinfo=UTC) for day in (1, 2, 3)]
    deleted = {
        cell: [
            delete_instances(nova_bed, cell, end - dt.timedelta(days=30, hours=1), limit=1)[0]
            for end in window_ends
        ]
        for cell in ("cell1", "cell2")
    }
    [paused] = stack.query("SELECT is_paused FROM dag WHERE dag_id = :d", d=PURGE)
    assert paused["is_paused"] is False, "the Asset-triggered purge DAG must start unpaused"
    stack.airflow("dags", "unpause", ARCHIVE)
    stack.airflow(
        "backfill", "create", "--dag-id", ARCHIVE,
        "--from-date", "2026-05-01T00:00:00+00:00", "--to-date", "2026-05-03T23:00:00+00:00",
        "--dag-run-conf", json.dumps({"batch_size": 2000}),
    )  # fmt: skip

    runs = stack.wait_for_runs(ARCHIVE, 3, run_type="backfill")
    assert [r["state"] for r in runs] == ["success"] * 3
    for run, end in zip(runs, window_ends, strict=True):
        assert run["data_interval_end"].startswith(end.strftime("%Y-%m-%d %H:%M"))
        report = stack.summary(run["id"])
        assert report.code == Code.OK and report.mode == "heal", report.findings
        assert str(report.details["cutoff"]).startswith(
            (end - dt.timedelta(days=30)).strftime("%Y-%m-%d %H:%M")
        )
        rows = report.details.get("rows", {})
        moved = {cell for cell, tables in rows.items() if any(tables.values())}
        assert announced_cells(stack, run["run_id"]) == moved, (run["run_id"], rows)
    announced = {r["run_id"]: announced_cells(stack, r["run_id"]) for r in runs}
    # Airflow may run a backfill's runs in any order; a run whose window's rows a later
    # window's run already archived moves nothing and sends no event.
    assert set().union(*announced.values()) == {"cell1", "cell2"}, announced
    purges, consumed_by = settled_purges(stack, announced)
    assert {r["state"] for r in purges} == {"success"}
    for purge in purges:
        report = stack.summary(purge["id"])
        assert report.mode == "heal" and report.code == Code.OK, report.findings  # configured
    for cell, uuids in deleted.items():
        url = support.cell_url(nova_bed, cell)
        live = {r.uuid for r in support.query(url, "SELECT uuid FROM instances")}
        assert not set(uuids) & live, f"{cell}: every window's deleted instance was archived"
        if None not in consumed_by.values():  # no event waits for a later purge run
            shadow = {r.uuid for r in support.query(url, "SELECT uuid FROM shadow_instances")}
            assert not set(uuids) & shadow, f"{cell}: archived, then purged"


def announced_cells(stack: airflow_stack.AirflowStack, run_id: str) -> set[str]:
    """The cells the archive run's announce task sent events for (its return value)."""
    rows = stack.query(
        "SELECT value FROM xcom WHERE dag_id = :d AND run_id = :r AND task_id = 'announce' "
        "AND key = 'return_value'",
        d=ARCHIVE,
        r=run_id,
    )
    assert rows, f"{run_id}: its announce task left no return value"
    value = rows[0]["value"]
    return set(json.loads(value) if isinstance(value, str) else value)


def settled_purges(
    stack: airflow_stack.AirflowStack, announced: dict[str, set[str]]
) -> tuple[list[dict[str, Any]], dict[str, int | None]]:
    """The purge runs that consumed the archive runs' Asset events, once none is pending.

    Each archive run sends one event per cell that moved rows (not cell0), all
    from its announce task, and one purge run consumes them all: never one purge
    run per cell. Archive runs that end while a purge run is still queued or
    running (a backfill's runs follow each other in seconds) are deferred by
    Airflow (max_active_runs=1) and coalesced into one later purge run; Airflow
    3.3 gives that run the events up to the first deferred one, so a later run's
    events wait for the purge run after the next archive run. Returns the purge
    runs and, per archive run that sent events, the purge run that consumed them
    (None: not yet).
    """
    deadline = time.monotonic() + 300
    expected = sum(len(cells) for cells in announced.values())
    while True:
        events = stack.query(
            "SELECT e.id, e.source_run_id, e.source_task_id, a.name, c.dag_run_id "
            "FROM asset_event e JOIN asset a ON a.id = e.asset_id "
            "LEFT JOIN dagrun_asset_event c ON c.event_id = e.id "
            "WHERE e.source_dag_id = :d",
            d=ARCHIVE,
        )
        pending = stack.query("SELECT * FROM asset_dag_run_queue WHERE target_dag_id = :d", d=PURGE)
        purges = stack.runs(PURGE)
        settled = all(r["state"] in ("success", "failed") for r in purges)
        if purges and settled and not pending and len(events) == expected:
            break
        assert time.monotonic() < deadline, (events, pending, purges)
        time.sleep(2)
    consumed_by: dict[str, int | None] = {}
    for run_id, cells in announced.items():
        sent = [e for e in events if e["source_run_id"] == run_id]
        assert sorted(str(e["name"]).rsplit(".", 1)[1] for e in sent) == sorted(cells), sent
        if not sent:
            continue
        assert {e["source_task_id"] for e in sent} == {"announce"}
        consumers = {e["dag_run_id"] for e in sent}
        assert len(consumers) == 1, f"{run_id}'s events were split between purge runs: {sent}"
        consumed_by[run_id] = consumers.pop()
    first = min(events, key=lambda e: e["id"])
    assert first["dag_run_id"] is not None, "the first events started no purge run"
    assert {r["run_type"] for r in purges} == {"asset_triggered"}
    assert len(purges) == len({c for c in consumed_by.values() if c is not None})
    assert len(purges) <= len(consumed_by), "more purge runs than archive runs that sent events"
    print(f"{len(announced)} archive runs -> {len(purges)} purge runs: {consumed_by}")
    return purges, consumed_by


def test_a_manual_trigger_with_a_bad_param_is_refused(stack: airflow_stack.AirflowStack) -> None:
    stack.wait_for_dags(["nova_audit_discover_hosts"])
    before = stack.runs("nova_audit_discover_hosts")
    result = stack.airflow(
        "dags", "trigger", "nova_audit_discover_hosts", "-c", json.dumps({"mode": "destroy"}),
        check=False,
    )  # fmt: skip
    assert result.returncode != 0
    assert "destroy" in result.stdout + result.stderr
    assert stack.runs("nova_audit_discover_hosts") == before


def test_a_drift_run_is_noted_by_the_scheduler_and_alerted_by_the_dag_processor(
    stack: airflow_stack.AirflowStack, nova_bed: Any, tmp_path: Any
) -> None:
    """The production paths of glue/notes.py and glue/alerts.py: the scheduler's listener
    writes the note, the DAG processor runs the callback, which reads the summary's XCom
    through its supervisor."""
    from testbed import drift
    from tests.dags.test_glance import alerts, glance_config

    dag_id = "nova_audit_discover_hosts"
    [change] = drift(nova_bed, "unmapped_hosts", 1)
    alert_file = tmp_path / "alerts.jsonl"
    shutil.copy(glance_config(nova_bed, tmp_path, alert_file), stack.config_path)
    stack.airflow("dags", "reserialize")  # the DAG now has the notifier's callbacks
    stack.airflow("dags", "unpause", dag_id)
    before = len(stack.runs(dag_id))
    stack.airflow("dags", "trigger", dag_id, "-c", json.dumps({"mode": "audit"}))
    [run] = stack.wait_for_runs(dag_id, before + 1)[before:]
    assert run["state"] == "success"
    [note] = stack.query("SELECT content FROM dag_run_note WHERE dag_run_id = :r", r=run["id"])
    assert note["content"].startswith("nova-audit: drift left in discover_hosts")
    assert f"by cell: {change['cell']} 1" in note["content"]
    deadline = time.monotonic() + 120

    def this_run() -> list[dict[str, Any]]:  # other unpaused DAGs alert into the file too
        return [a for a in alerts(alert_file) if a["run_id"] == run["run_id"]]

    while not this_run() and time.monotonic() < deadline:
        time.sleep(1)
    [alert] = this_run()
    assert alert["message"] == f"ALERT {note['content']}"
    assert alert["report"]["counts"]["drifted"] == 1


def test_the_nova_audit_page_in_a_browser(
    stack: airflow_stack.AirflowStack, nova_bed: Any, tmp_path: Any
) -> None:
    """Drift injected, an audit run under the scheduler: the page in Airflow's UI shows it
    (task, cell, finding, fix); after a heal run it shows the cell healed; an anonymous
    request is refused."""
    from urllib.parse import quote

    from testbed import drift
    from tests.dags import browser
    from tests.dags.test_glance import glance_config

    dag_id = "nova_audit_discover_hosts"
    [change] = drift(nova_bed, "unmapped_hosts", 1)
    shutil.copy(glance_config(nova_bed, tmp_path, tmp_path / "alerts.jsonl"), stack.config_path)
    stack.wait_for_dags([dag_id])
    stack.airflow("dags", "unpause", dag_id)
    audit = _trigger(stack, dag_id, "audit", change["cell"])  # one cell: one task process
    for path in ("/nova-audit/", "/nova-audit/api/summary"):
        assert _status(stack.url + path) == 401
        assert _status(stack.url + path, token="forged") == 403
    summary = _summary_json(stack)
    cells = {(c["task"], c["cell"]): c for c in summary["cells"]}
    cell = cells["discover_hosts", change["cell"]]
    assert cell["result"] == "drift left"
    assert [f["object_id"] for f in cell["open_findings"]] == [change["host"]]

    row = f'#cells tr[data-task="discover_hosts"][data-cell="{change["cell"]}"]'
    with browser.chromium() as page:
        browser.login(page, stack.url, airflow_stack.ADMIN, stack.password, "/plugin/nova-audit")
        page.switch_to.frame(browser.element(page, 'iframe[src="nova-audit/"]'))
        assert browser.element(page, row).get_attribute("data-result") == "drift left"
        finding = browser.element(page, f'#findings tr[data-cell="{change["cell"]}"]').text
        assert change["host"] in finding
        [fix] = [f["fix"] for f in cell["open_findings"]]
        assert fix.startswith("nova-audit run discover_hosts") and "--mode heal" in fix
        assert fix in finding
        run_link = f"/dags/{dag_id}/runs/{quote(audit['run_id'], safe='')}"
        assert browser.element(page, f'svg a.point[href="{run_link}"]')

        _trigger(stack, dag_id, "heal", change["cell"])
        page.switch_to.default_content()
        page.get(stack.url + "/nova-audit/")
        assert browser.element(page, row).get_attribute("data-result") == "healed"
        assert not page.find_elements("css selector", f'#findings tr[data-cell="{change["cell"]}"]')


def _trigger(
    stack: airflow_stack.AirflowStack, dag_id: str, mode: str, cell: str
) -> dict[str, Any]:
    before = len(stack.runs(dag_id))
    stack.airflow("dags", "trigger", dag_id, "-c", json.dumps({"mode": mode, "cells": [cell]}))
    [run] = stack.wait_for_runs(dag_id, before + 1)[before:]
    assert run["state"] == "success"
    return run


def _status(url: str, token: str | None = None) -> int:
    """The status a plain HTTP client gets: no cookie, and no token unless given one."""
    import httpx

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.get(url, headers=headers, timeout=30).status_code


def _summary_json(stack: airflow_stack.AirflowStack) -> dict[str, Any]:
    """The page's JSON, with a token the API issues for the stack's admin."""
    response = stack.rest("GET", "/nova-audit/api/summary")
    response.raise_for_status()
    return dict(response.json())


def test_an_external_monitor_triggers_host_fault_through_the_rest_api(
    stack: airflow_stack.AirflowStack, nova_bed: Any, tmp_path: Any
) -> None:
    """The seed's flow: a monitor fences a host, then asks for a heal run naming it with
    `POST /api/v2/dags/{dag_id}/dagRuns` (a JWT from `POST /auth/token`); a host that
    still reports is refused and nothing is written."""
    from testbed import heartbeat, nova_api

    dag_id = "nova_audit_host_fault"
    url = support.cell_url(nova_bed, "cell1")
    failed, alive = [
        r.host
        for r in support.query(
            url, "SELECT host FROM services WHERE `binary` = 'nova-compute' ORDER BY id"
        )
    ][:2]
    heartbeat(nova_bed)  # host_fault judges heartbeats by the wall clock
    support.execute(
        url,
        "UPDATE services SET last_seen_up = UTC_TIMESTAMP() - INTERVAL 1 HOUR WHERE host = :h",
        h=failed,
    )
    api = nova_api.start(nova_bed)
    try:
        config = support.config_with(
            nova_bed,
            tmp_path,
            nova=nova_api.config_section(api),
            **{"audit.host_fault": {"schedule": "none"}},  # manual runs only: no scheduled one
        )
        shutil.copy(config, stack.config_path)
        stack.airflow("dags", "reserialize")
        stack.wait_for_dags([dag_id])
        unpaused = stack.rest("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})
        assert unpaused.status_code == 200, unpaused.text

        def trigger(hosts: list[str]) -> dict[str, Any]:
            before = len(stack.runs(dag_id))
            body = {"logical_date": None, "conf": {"hosts": hosts, "mode": "heal"}}
            answer = stack.rest("POST", f"/api/v2/dags/{dag_id}/dagRuns", body)
            assert answer.status_code == 200, answer.text
            [run] = stack.wait_for_runs(dag_id, before + 1, run_type="manual")[before:]
            return run

        untouched = support.snapshot(nova_bed)
        refused = trigger([alive])
        assert refused["state"] == "failed"
        report = stack.summary(refused["id"])
        assert report.code == Code.FAILURE
        statuses = {f.object_id: f.status for f in report.findings}
        assert statuses == {alive: Status.MUST_NOT_FIX, failed: Status.LEFT}, report.findings
        assert support.snapshot(nova_bed) == untouched

        healed = trigger([failed])
        assert healed["state"] == "success"
        assert stack.summary(healed["id"]).code == Code.OK
        [seen] = nova_api.get(api, f"/os-services?host={failed}&binary=nova-compute")["services"]
        assert seen["forced_down"] is True and seen["status"] == "disabled"
    finally:
        nova_api.stop(api)
