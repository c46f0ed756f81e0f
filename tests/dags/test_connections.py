"""Airflow connections serve the API database and Placement in a real DAG run.

The run's config file is unusable on its own: its [api_database] names a
database that does not exist and its [placement] endpoint answers nothing.
`nova_api_db` (mysql, through MySqlHook) and `nova_default` (keystoneauth1
options) must serve the run, and its report must equal the in-process run's
with the bed's good config file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from nova_audit_ops.engine.report import Code, Report
from nova_audit_ops.glue.hooks.nova import NovaHook
from nova_audit_ops.settings.errors import DatabaseUnreachableError
from testbed import drift
from testbed.airflow_env import airflow_env, run_airflow, summary_report, task_states
from tests import support

DEAD_PLACEMENT = "http://127.0.0.1:1"


def api_db_connection(bed: Any) -> dict[str, Any]:
    """The bed's API database as an Airflow connection of type mysql."""
    url = make_url(bed.api_url)
    return {
        "conn_type": "mysql",
        "host": url.host,
        "port": url.port or 3306,
        "login": url.username,
        "password": url.password,
        "schema": url.database,
        "extra": {"charset": "utf8mb4"},
    }


def nova_connection(bed: Any) -> dict[str, Any]:
    """The bed's noauth Placement (the options of its config file) as a `nova` connection."""
    return {
        "conn_type": "nova",
        "extra": {
            "auth_type": "admin_token",
            "token": "admin",
            "placement": {"endpoint": bed.placement_url},
        },
    }


def broken_config(bed: Any, tmp_path: Path) -> str:
    """The bed's config file with a missing API database and a dead Placement endpoint."""
    missing_db = make_url(bed.api_url).set(database="nova_api_does_not_exist")
    return support.config_with(
        bed,
        tmp_path,
        api_database={"connection": missing_db.render_as_string(hide_password=False)},
        placement={"endpoint": DEAD_PLACEMENT},
    )


def comparable(report: Report) -> dict[str, Any]:
    """A report's content independent of the order cells were merged in.

    `details` counts Placement requests: one process reuses reads across cells,
    a DAG's one process per cell cannot, so the number differs by design.
    """
    data = report.to_dict()
    data.pop("details")
    data["findings"] = sorted(data["findings"], key=lambda f: (f["cell"] or "", f["object_id"]))
    data["cells_checked"] = sorted(data["cells_checked"])
    return data


def test_config_file_alone_cannot_serve_the_run(nova_bed: Any, tmp_path: Path) -> None:
    config = broken_config(nova_bed, tmp_path)
    with pytest.raises(DatabaseUnreachableError, match="nova_api_does_not_exist"):
        support.run(nova_bed, "heal_allocations", config_path=config, mode="audit")


def test_hook_test_connection_on_the_bed(
    nova_bed: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = broken_config(nova_bed, tmp_path)
    ok, message = NovaHook(config_file=config).test_connection()
    assert not ok
    monkeypatch.setenv("AIRFLOW_CONN_NOVA_API_DB", json.dumps(api_db_connection(nova_bed)))
    ok, message = NovaHook(config_file=config).test_connection()
    assert not ok and "Placement" in message, message
    monkeypatch.setenv("AIRFLOW_CONN_NOVA_DEFAULT", json.dumps(nova_connection(nova_bed)))
    assert NovaHook(config_file=config).test_connection() == (
        True,
        "API database and Placement answer",
    )


def test_connections_serve_api_database_and_placement(
    airflow_home: Path, nova_bed_placement: Any, tmp_path: Path
) -> None:
    bed = nova_bed_placement
    drift(bed, "missing_allocations", 3)
    expected = support.run(bed, "heal_allocations", mode="audit")
    assert expected.code == Code.WARNING and expected.counts.drifted == 3

    env = airflow_env(airflow_home, broken_config(bed, tmp_path))
    # `airflow dags test` runs the tasks in processes that inherit this environment.
    env["AIRFLOW_CONN_NOVA_API_DB"] = json.dumps(api_db_connection(bed))
    env["AIRFLOW_CONN_NOVA_DEFAULT"] = json.dumps(nova_connection(bed))
    result = run_airflow(
        env, "dags", "test", "nova_audit_heal_allocations", "-c", '{"mode": "audit"}', check=False
    )
    output = result.stdout + result.stderr
    states = task_states(airflow_home, "nova_audit_heal_allocations")
    assert states.pop("run_cell[cell0]") == "skipped", states  # heal_allocations skips cell0
    assert set(states.values()) == {"success"}, (states, output[-3000:])
    assert comparable(summary_report(airflow_home, "nova_audit_heal_allocations")) == comparable(
        expected
    )
    password = make_url(bed.api_url).password
    assert password and password not in output
