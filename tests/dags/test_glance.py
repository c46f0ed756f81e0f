"""Drift at a glance, metrics and alerts under real `airflow dags test` runs.

- the run's note (what Airflow's grid and runs list mark) says a run left drift
  or failed, a clean run has none; cells that left drift get a task note;
- a real StatsD listener (a UDP socket) receives the drift, fixed and failed
  counts per task and cell that Airflow's metrics send;
- the configured notifier (a real BaseNotifier writing to a file) is called
  with the findings' summary on a drift run and a failed run, never on a clean one.
"""

from __future__ import annotations

import json
import socket
import sqlite3
import threading
from collections import Counter
from pathlib import Path
from typing import Any

from nova_audit_ops.engine.report import Code
from testbed import drift
from testbed.airflow_env import airflow_env, run_airflow, summary_report, task_states
from tests import support

DAG = "nova_audit_discover_hosts"


class StatsdListener:
    """A UDP socket on loopback that keeps every StatsD line sent to it."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.lines: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._receive, daemon=True)
        self._thread.start()

    def _receive(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(65535)
            except TimeoutError:
                continue
            self.lines.extend(data.decode("utf-8", "replace").splitlines())

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()

    def take(self, prefix: str) -> list[tuple[str, int, str]]:
        """(name, value, type) of the lines under `prefix` received so far; forgets them."""
        taken = [line for line in self.lines if line.startswith(prefix)]
        self.lines = [line for line in self.lines if not line.startswith(prefix)]
        out = []
        for line in taken:
            name, _, rest = line.partition(":")
            value, _, kind = rest.partition("|")
            out.append((name, int(float(value)), kind))
        return out


def run_dag(home: Path, config: str, statsd: StatsdListener, **params: Any) -> str:
    env = airflow_env(home, config)
    env.update(
        {
            "AIRFLOW__METRICS__STATSD_ON": "True",
            "AIRFLOW__METRICS__STATSD_HOST": "127.0.0.1",
            "AIRFLOW__METRICS__STATSD_PORT": str(statsd.port),
            "AIRFLOW__METRICS__STATSD_PREFIX": "airflow",
        }
    )
    result = run_airflow(env, "dags", "test", DAG, "-c", json.dumps(params), check=False)
    return result.stdout + result.stderr


def notes(home: Path) -> tuple[str | None, dict[str, str]]:
    """The latest run's note and its task instances' notes (`task[label]` -> text)."""
    with sqlite3.connect(home / "airflow.db") as db:
        run_pk = db.execute("SELECT max(id) FROM dag_run WHERE dag_id = ?", (DAG,)).fetchone()[0]
        row = db.execute(
            "SELECT content FROM dag_run_note WHERE dag_run_id = ?", (run_pk,)
        ).fetchone()
        ti_rows = db.execute(
            "SELECT ti.task_id, ti.rendered_map_index, n.content FROM task_instance ti "
            "JOIN dag_run r ON r.run_id = ti.run_id AND r.dag_id = ti.dag_id "
            "JOIN task_instance_note n ON n.ti_id = ti.id "
            "WHERE r.id = ? AND n.content IS NOT NULL",
            (run_pk,),
        ).fetchall()
    return (row[0] if row else None), {f"{t}[{label}]": text for t, label, text in ti_rows}


def alerts(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def glance_config(bed: Any, tmp_path: Path, alert_file: Path, **sections: Any) -> str:
    args = {"path": str(alert_file), "message": "ALERT {{ nova_audit_summary }}"}
    audit = {"notifier": "tests.glue.file_notifier.FileNotifier", "notifier_args": json.dumps(args)}
    return support.config_with(bed, tmp_path, audit=audit, **sections)


def metric_values(lines: list[tuple[str, int, str]], metric: str) -> dict[str, tuple[int, str]]:
    """`cell` -> (value, type) of the dotted nova_audit.discover_hosts.<cell>.<metric> lines."""
    prefix = "airflow.nova_audit.discover_hosts."
    out = {}
    for name, value, kind in lines:
        if name.startswith(prefix) and name.endswith("." + metric):
            out[name[len(prefix) : -len(metric) - 1]] = (value, kind)
    return out


def test_drift_run_is_noted_measured_and_alerted_a_healed_one_is_not(
    airflow_home: Path, nova_bed: Any, tmp_path: Path
) -> None:
    changes = drift(nova_bed, "unmapped_hosts", 2)
    per_cell = Counter(str(c["cell"]) for c in changes)
    alert_file = tmp_path / "alerts.jsonl"
    config = glance_config(nova_bed, tmp_path, alert_file)
    statsd = StatsdListener()
    try:
        run_dag(airflow_home, config, statsd, mode="audit")
        audit_metrics = statsd.take("airflow.nova_audit.")
        audit = summary_report(airflow_home, DAG)
        note, ti_notes = notes(airflow_home)
        audit_alerts = alerts(alert_file)

        run_dag(airflow_home, config, statsd, mode="heal")
        heal_metrics = statsd.take("airflow.nova_audit.")
        heal = summary_report(airflow_home, DAG)
        heal_note, heal_ti_notes = notes(airflow_home)
    finally:
        statsd.close()

    assert audit.code == Code.WARNING
    assert note is not None and note.startswith("nova-audit: drift left in discover_hosts")
    assert "2 finding(s) need a fix" in note
    for cell, count in per_cell.items():
        assert f"{cell} {count}" in note
        assert ti_notes[f"run_cell[{cell}]"].startswith("nova-audit: drift left")
    assert set(ti_notes) == {f"run_cell[{cell}]" for cell in per_cell}

    [alert] = audit_alerts
    assert alert["message"] == f"ALERT {note}"
    assert alert["report"]["counts"]["drifted"] == 2

    cells = {"cell1", "cell2"}  # discover_hosts skips cell0: no report, no metric
    drift_gauges = metric_values(audit_metrics, "drift")
    assert drift_gauges == {c: (per_cell.get(c, 0), "g") for c in cells}
    assert metric_values(audit_metrics, "fixed") == {c: (0, "c") for c in cells}
    assert metric_values(audit_metrics, "failed") == {c: (0, "c") for c in cells}
    assert ("airflow.nova_audit.discover_hosts.result", 1, "g") in audit_metrics
    tagged = [m for m in audit_metrics if m[0] == "airflow.nova_audit.drift"]
    assert len(tagged) == len(cells) and sum(v for _, v, _ in tagged) == 2

    assert heal.code == Code.OK and heal.counts.fixed == 2
    assert heal_note is None and heal_ti_notes == {}
    assert len(alerts(alert_file)) == 1, "a healed (clean) run must not alert"
    assert metric_values(heal_metrics, "fixed") == {c: (per_cell.get(c, 0), "c") for c in cells}
    assert metric_values(heal_metrics, "drift") == {c: (0, "g") for c in cells}
    assert ("airflow.nova_audit.discover_hosts.result", 0, "g") in heal_metrics


def test_failed_run_is_noted_measured_and_alerted(
    airflow_home: Path, nova_bed: Any, tmp_path: Path
) -> None:
    alert_file = tmp_path / "alerts.jsonl"
    dead_cell = {"cell2": "mysql+pymysql://natb:s3cret-pw@127.0.0.1:1/nope"}
    config = glance_config(nova_bed, tmp_path, alert_file, **{"audit.cells": dead_cell})
    statsd = StatsdListener()
    try:
        output = run_dag(airflow_home, config, statsd, mode="audit")
        lines = statsd.take("airflow.nova_audit.")
    finally:
        statsd.close()

    assert task_states(airflow_home, DAG)["run_cell[cell2]"] == "failed"
    note, ti_notes = notes(airflow_home)
    assert note is not None and note.startswith("nova-audit: FAILURE in discover_hosts")
    assert "cells NOT checked: cell2" in note
    assert ti_notes["run_cell[cell2]"].startswith("nova-audit: FAILURE")
    [alert] = alerts(alert_file)
    assert alert["message"] == f"ALERT {note}"
    assert alert["report"]["cells_failed"] == ["cell2"]
    assert metric_values(lines, "failed")["cell2"][0] >= 1
    assert metric_values(lines, "failed")["cell1"] == (0, "c")
    assert ("airflow.nova_audit.discover_hosts.result", 2, "g") in lines
    assert "s3cret-pw" not in output + json.dumps(alert) + note
