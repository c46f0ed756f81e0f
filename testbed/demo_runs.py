"""The demo's DAG runs, through the running scheduler: trigger by REST, wait, read reports.

Runs are triggered through Airflow's public REST API (`/api/v2`, a JWT from the
Simple auth manager's `/auth/token`), as the UI's trigger button does, and read
back from the metadata DB: the run's state and its summary task's XCom (the
report the UI's nova-audit page reads too).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import requests

from nova_audit_ops.engine.report import CRASH_EXIT_CODE, Report
from testbed.airflow_env import report_from_xcom
from testbed.airflow_stack import AirflowStack, stack_port

DAG_PREFIX = "nova_audit_"
FINISHED = ("success", "failed")


@dataclass
class Run:
    """One DAG run of the demo's plan: triggered once the runs it comes `after` finished."""

    task: str
    mode: str
    label: str  # which part of the demo it belongs to, for the printout
    extra: dict = field(default_factory=dict)  # params besides the mode
    after: list[Run] = field(default_factory=list)
    run_id: str | None = None  # set when triggered
    state: str = "planned"
    report: Report | None = None
    seconds: float = 0.0  # from trigger to finish
    triggered: float = 0.0

    @property
    def dag_id(self) -> str:
        return DAG_PREFIX + self.task

    @property
    def finished(self) -> bool:
        return self.state in FINISHED

    @property
    def code(self) -> int:
        """The run's exit code; a run that left no summary crashed (255)."""
        return int(self.report.code) if self.report else CRASH_EXIT_CODE


class Api:
    """Airflow's REST API as the demo's `admin` user."""

    def __init__(self, stack: AirflowStack, username: str, password: str) -> None:
        self.base = f"http://127.0.0.1:{stack_port(stack)}"
        self.session = requests.Session()
        response = self.session.post(
            self.base + "/auth/token",
            json={"username": username, "password": password},
            timeout=30,
        )
        response.raise_for_status()
        self.session.headers["Authorization"] = "Bearer " + response.json()["access_token"]

    def call(self, method: str, path: str, body: dict) -> dict:
        response = self.session.request(method, self.base + "/api/v2" + path, json=body, timeout=60)
        if response.status_code >= 400:
            raise RuntimeError(f"{method} {path}: {response.status_code} {response.text[:500]}")
        return dict(response.json())

    def unpause(self, dag_id: str) -> None:
        self.call("PATCH", f"/dags/{dag_id}", {"is_paused": False})

    def trigger(self, run: Run) -> None:
        """A manual run of the task's DAG with the run's mode and params."""
        body = {
            "logical_date": None,
            "conf": {"mode": run.mode, **run.extra},
            "note": f"make demo: {run.mode}, {run.label}",
        }
        run.run_id = str(self.call("POST", f"/dags/{run.dag_id}/dagRuns", body)["dag_run_id"])
        run.state, run.triggered = "queued", time.monotonic()


def execute(
    api: Api,
    stack: AirflowStack,
    runs: list[Run],
    tick: Callable[[], object],
    done: Callable[[Run], object],
    timeout: float = 900,
) -> None:
    """Trigger each run as soon as the runs it comes after have finished, until all have;
    `tick` is called every 10 s, `done` with each run as it finishes (report read)."""
    deadline = time.monotonic() + timeout
    last_tick = 0.0
    while not all(run.finished for run in runs):
        if time.monotonic() - last_tick > 10:
            tick()
            last_tick = time.monotonic()
        for run in runs:
            if run.run_id is None and all(before.finished for before in run.after):
                api.trigger(run)
        _poll(stack, [r for r in runs if r.run_id and not r.finished], done)
        if time.monotonic() > deadline:
            late = ", ".join(f"{r.dag_id} ({r.mode})" for r in runs if not r.finished)
            raise TimeoutError(f"runs not finished within {timeout:.0f}s: {late}")
        stack._check_alive()
        time.sleep(1)


def _poll(stack: AirflowStack, running: list[Run], done: Callable[[Run], object]) -> None:
    if not running:
        return
    by_id = {(r.dag_id, r.run_id): r for r in running}
    for row in stack.query(
        "SELECT id, dag_id, run_id, state FROM dag_run WHERE run_id IN :ids",
        ids=tuple(r.run_id for r in running),
    ):
        run = by_id.get((row["dag_id"], row["run_id"]))
        if run and row["state"] in FINISHED:
            run.state, run.seconds = row["state"], time.monotonic() - run.triggered
            run.report = _summary(stack, int(row["id"]))
            done(run)


def _summary(stack: AirflowStack, dag_run_id: int) -> Report | None:
    rows = stack.query(
        "SELECT value FROM xcom WHERE dag_run_id = :r AND task_id = 'summary' "
        "AND key = 'return_value'",
        r=dag_run_id,
    )
    return report_from_xcom(rows[0]["value"]) if rows else None


def failed_tasks(stack: AirflowStack, run: Run) -> list[str]:
    """`task_id[map index]` of the run's task instances that failed."""
    rows = stack.query(
        "SELECT task_id, map_index, rendered_map_index, state FROM task_instance "
        "WHERE dag_id = :d AND run_id = :r AND state IN ('failed', 'upstream_failed') "
        "ORDER BY task_id, map_index",
        d=run.dag_id,
        r=run.run_id,
    )
    return [
        r["task_id"]
        + ("" if r["map_index"] < 0 else f"[{r['rendered_map_index'] or r['map_index']}]")
        + f" {r['state']}"
        for r in rows
    ]


def crash_note(stack: AirflowStack, run: Run) -> str:
    """Why a run left no summary: which tasks failed, and where their logs are."""
    logs = stack.home / "logs" / f"dag_id={run.dag_id}" / f"run_id={run.run_id}"
    failed = ", ".join(failed_tasks(stack, run)) or "none recorded"
    return (
        f"{run.dag_id} ({run.mode}) {run.state} without a summary; failed: {failed}; logs: {logs}"
    )
