"""Config file parsing and knob validation: every error names the key and the fix."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from nova_audit_ops import registry, runner
from nova_audit_ops.registry import spec
from nova_audit_ops.settings.errors import ConfigError, NovaAuditError


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "nova-audit.conf"
    path.write_text(textwrap.dedent(text))
    return str(path)


def test_nova_conf_sections_are_read(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        [DEFAULT]
        debug = true
        [api_database]
        connection = mysql+pymysql://nova:s3cret@db/nova_api
        [placement]
        auth_type = password
        auth_url = http://keystone/v3
        username = nova
        password = pw
        [audit]
        mode = heal
        time_budget = 60
        [audit.discover_hosts]
        batch_size = 10
        by_service = yes
        [audit.cells]
        cell1 = mysql+pymysql://nova:x@other/nova_cell1
        """,
    )
    cfg = registry.load_config(path)
    assert cfg.api_connection == "mysql+pymysql://nova:s3cret@db/nova_api"
    assert cfg.placement["auth_type"] == "password"
    assert "debug" not in cfg.placement
    assert cfg.cell_connections == {"cell1": "mysql+pymysql://nova:x@other/nova_cell1"}
    settings = cfg.settings(spec("discover_hosts"))
    assert settings["mode"] == "heal"
    assert settings["time_budget"] == 60
    assert settings["batch_size"] == 10
    assert settings["by_service"] is True
    assert settings["schedule"] == "*/10 * * * *"


def test_a_real_nova_conf_with_repeated_keys_loads(tmp_path: Path) -> None:
    """oslo.config accepts repeated keys (MultiStrOpt) and a section given twice."""
    path = write(
        tmp_path,
        """
        [DEFAULT]
        logging_context_format_string = %(asctime)s.%(msecs)03d %(levelname)s %(name)s
        [pci]
        alias = {"name": "a1", "product_id": "1", "vendor_id": "8086"}
        alias = {"name": "a2", "product_id": "2", "vendor_id": "8086"}
        device_spec = {"vendor_id": "8086"}
        [api_database]
        connection = mysql+pymysql://nova:p%40ss@db/nova_api
        [pci]
        device_spec = {"vendor_id": "10de"}
        [service_user]
        send_service_user_token = true
        """,
    )
    cfg = registry.load_config(path)
    assert cfg.api_connection == "mysql+pymysql://nova:p%40ss@db/nova_api"
    assert cfg.settings(spec("preflight"))["mode"] == "audit"


def test_shipped_default_mode_is_audit(tmp_path: Path) -> None:
    cfg = registry.load_config(write(tmp_path, "[api_database]\nconnection = sqlite://\n"))
    assert cfg.settings(spec("discover_hosts"))["mode"] == "audit"


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        pytest.param("[audit]\nmode = fix\n", "mode = 'fix' is invalid", id="bad mode"),
        pytest.param("[audit]\nbatch_size = 0\n", "at least 1", id="batch size zero"),
        pytest.param("[audit]\ntime_budget = soon\n", "time_budget", id="not a number"),
        pytest.param(
            "[audit.discover_hosts]\nbatchsize = 3\n", "unknown key 'batchsize'", id="typo in key"
        ),
        pytest.param("[audit.discover_host]\nmode = heal\n", "unknown section", id="bad task"),
        pytest.param("[audit.discover_hosts]\nschedule = every day\n", "cron", id="bad cron"),
        pytest.param("[audit.discover_hosts]\nwindow = 1am-5am\n", "01:00-05:00", id="bad window"),
        pytest.param("[audit]\ntimezone = Mars/Base\n", "time zone", id="bad zone"),
        pytest.param(
            "[audit.discover_hosts]\nby_service = maybe\n", "true or false", id="bad bool"
        ),
    ],
)
def test_bad_values_name_the_key(tmp_path: Path, text: str, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle.replace("(", r"\(").replace("*", r"\*")):
        registry.load_config(write(tmp_path, text))


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist: pass --config-file"):
        registry.load_config(str(tmp_path / "nope.conf"))
    assert registry.load_config(str(tmp_path / "nope.conf"), must_exist=False).path is None


def test_missing_api_connection_names_the_fix(tmp_path: Path) -> None:
    cfg = registry.load_config(write(tmp_path, "[audit]\nmode = audit\n"))
    with pytest.raises(ConfigError, match=r"\[api_database\] connection"):
        cfg.require_api_connection()


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        pytest.param({"mode": "repair"}, "mode", id="bad mode"),
        pytest.param({"batch_size": -5}, "at least 1", id="negative batch"),
        pytest.param({"batch_size": True}, "boolean", id="bool for int"),
        pytest.param({"frobnicate": 1}, "unknown option", id="unknown option"),
    ],
)
def test_bad_run_params_are_refused(tmp_path: Path, params: dict, needle: str) -> None:
    cfg = registry.load_config(write(tmp_path, "[api_database]\nconnection = sqlite://\n"))
    with pytest.raises(NovaAuditError, match=needle):
        runner.options_for("discover_hosts", cfg, params)


def test_params_override_config(tmp_path: Path) -> None:
    cfg = registry.load_config(write(tmp_path, "[audit]\nmode = heal\nbatch_size = 7\n"))
    options = runner.options_for(
        "discover_hosts", cfg, {"mode": "audit", "batch_size": "9", "cells": ["c1"]}
    )
    assert (options["mode"], options["batch_size"], options["cells"]) == ("audit", 9, ["c1"])


def test_knob_json_schema_matches_validation() -> None:
    schema = spec("discover_hosts").knob("batch_size").json_schema()
    assert schema["type"] == "integer" and schema["minimum"] == 1
    assert spec("discover_hosts").knob("mode").json_schema()["enum"] == ["audit", "heal"]


def ui_marks_required(schema: dict[str, Any]) -> bool:
    """Airflow 3.3's trigger form stars a field whose schema type does not admit null."""
    kind = schema.get("type")
    return bool(kind) and not (isinstance(kind, list) and "null" in kind)


def test_optional_params_are_not_starred_and_every_param_has_a_title() -> None:
    for task in registry.TASKS:
        for knob in spec(task).param_knobs():
            schema = knob.json_schema()
            assert schema["title"] and "_" not in schema["title"], (task, knob.name)
            if knob.kind in ("list", "str"):  # empty means "all" or "unset"
                assert not ui_marks_required(schema), (task, knob.name, schema)
    cells = spec("discover_hosts").knob("cells")
    assert cells.json_schema()["title"] == "Cells" and cells.parse(None, "param") == []


def test_database_account_from_the_audit_section(tmp_path: Path) -> None:
    path = tmp_path / "nova-audit.conf"
    path.write_text("[audit]\ndatabase_user = nova_audit\ndatabase_password = s3cret-pw\n")
    assert registry.load_config(str(path)).database_account == ("nova_audit", "s3cret-pw")
    path.write_text("[audit]\n")
    assert registry.load_config(str(path)).database_account == (None, None)
    path.write_text("[audit]\ndatabase_password = s3cret-pw\n")
    with pytest.raises(ConfigError, match="database_password is set without database_user"):
        registry.load_config(str(path)).database_account  # noqa: B018
