"""NovaHook: Airflow connections (AIRFLOW_CONN_<ID>, JSON form) over the config file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from nova_audit_ops import runner
from nova_audit_ops.clients import secrets
from nova_audit_ops.clients.db import Engines
from nova_audit_ops.glue.hooks import nova as nova_hook
from nova_audit_ops.glue.hooks.nova import NovaHook
from nova_audit_ops.glue.operators import CellTaskOperator, GlobalStepOperator, ListCellsOperator
from nova_audit_ops.nova.cells import Cell
from nova_audit_ops.settings.errors import ConfigError

FILE_API_URL = "mysql+pymysql://nova:file-api-pw@127.0.0.1:1/nova_api"
CONFIG = f"""
[api_database]
connection = {FILE_API_URL}

[placement]
auth_type = admin_token
endpoint = http://file-placement:8778
token = file-placement-token

[cinder]
auth_type = admin_token
endpoint = http://file-cinder:8776/v3
token = file-cinder-token

[audit.cells]
cell1 = mysql+pymysql://nova:file-cell-pw@127.0.0.1:1/nova_cell1
"""
KEYSTONE_CONN = {
    "conn_type": "nova",
    "login": "nova-audit",
    "password": "ks-pw-4c1d",
    "host": "https://keystone.example:5000/v3",
    "extra": {
        "auth_type": "password",
        "project_name": "service",
        "user_domain_name": "Default",
        "project_domain_name": "Default",
        "region_name": "RegionTwo",
        "valid_interfaces": ["internal", "public"],
        "insecure": False,
        "no_such_option": "ignored",
        "cinder": {"endpoint_override": "http://cinder.example:8776/v3", "unknown": 1},
        "nova": {"username": "nova-compute-admin", "password": "nova-pw-77ab"},
    },
}
API_DB_CONN = {
    "conn_type": "mysql",
    "host": "db.example",
    "port": 3307,
    "login": "nova",
    "password": "conn-api-pw-91",
    "schema": "nova_api",
}
CELL1 = Cell(
    id=2, uuid="c1c1c1c1-0000-0000-0000-000000000001", name="cell1", database_connection=""
)


def set_conn(monkeypatch: pytest.MonkeyPatch, conn_id: str, conn: dict[str, Any]) -> None:
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))


@pytest.fixture
def config_file(tmp_path: Path) -> str:
    path = tmp_path / "nova-audit.conf"
    path.write_text(CONFIG, encoding="utf-8")
    return str(path)


@pytest.fixture(autouse=True)
def no_nova_connections(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("NOVA_DEFAULT", "NOVA_API_DB", "NOVA_CELL_CELL1", f"NOVA_CELL_{CELL1.uuid}"):
        monkeypatch.delenv(f"AIRFLOW_CONN_{name}", raising=False)


@pytest.fixture
def masked(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """What reaches Airflow's masker, with nova-audit's listeners reset for the test."""
    import airflow.sdk.log

    seen: list[str] = []
    monkeypatch.setattr(secrets, "_listeners", [])
    monkeypatch.setattr(nova_hook, "_forwarding", False)
    monkeypatch.setattr(airflow.sdk.log, "mask_secret", seen.append)
    return seen


def test_the_provider_hook_contract() -> None:
    assert NovaHook.conn_name_attr == "nova_conn_id"
    assert NovaHook.default_conn_name == "nova_default"
    assert NovaHook.conn_type == "nova"
    assert NovaHook.hook_name
    behaviour = NovaHook.get_ui_field_behaviour()
    assert set(behaviour) <= {"hidden_fields", "relabeling", "placeholders"}
    json.loads(behaviour["placeholders"]["extra"])
    hook = NovaHook()
    assert (hook.nova_conn_id, hook.api_db_conn_id, hook.config_file) == (
        "nova_default",
        "nova_api_db",
        None,
    )
    hook = NovaHook(nova_conn_id="n", api_db_conn_id="a", config_file="/c")
    assert (hook.nova_conn_id, hook.api_db_conn_id, hook.config_file) == ("n", "a", "/c")


def test_init_has_no_side_effect_and_forwarding_is_idempotent(
    masked: list[str], monkeypatch: pytest.MonkeyPatch, config_file: str
) -> None:
    NovaHook(config_file=config_file)
    assert secrets._listeners == [], "__init__ must not install the Airflow masker"
    set_conn(monkeypatch, "nova_default", KEYSTONE_CONN)
    hook = NovaHook(config_file=config_file)
    hook.load_config()
    hook.load_config()
    NovaHook(config_file=config_file).api_engine()
    assert len(secrets._listeners) == 1
    assert "ks-pw-4c1d" in masked and "nova-pw-77ab" in masked
    assert masked.count("ks-pw-4c1d") == 1


@pytest.mark.parametrize(
    ("service", "expected"),
    [
        pytest.param(
            "placement",
            {
                "auth_type": "password",
                "auth_url": "https://keystone.example:5000/v3",
                "username": "nova-audit",
                "password": "ks-pw-4c1d",
                "project_name": "service",
                "user_domain_name": "Default",
                "project_domain_name": "Default",
                "region_name": "RegionTwo",
                "valid_interfaces": "internal,public",
                "insecure": "false",
            },
            id="fields and shared extras",
        ),
        pytest.param(
            "cinder",
            {"endpoint_override": "http://cinder.example:8776/v3", "username": "nova-audit"},
            id="a per-service dict adds an option for one service",
        ),
        pytest.param(
            "nova",
            {"username": "nova-compute-admin", "password": "nova-pw-77ab"},
            id="a per-service dict overrides the fields",
        ),
    ],
)
def test_connection_options_map_onto_service_sections(
    monkeypatch: pytest.MonkeyPatch, config_file: str, service: str, expected: dict[str, str]
) -> None:
    set_conn(monkeypatch, "nova_default", KEYSTONE_CONN)
    options = getattr(NovaHook(config_file=config_file).load_config(), service)
    assert options.items() >= expected.items()
    assert not {"no_such_option", "unknown", "cinder", "nova", "placement"} & set(options)


def test_unknown_extras_are_logged_by_name_only(
    monkeypatch: pytest.MonkeyPatch, config_file: str, caplog: pytest.LogCaptureFixture
) -> None:
    set_conn(monkeypatch, "nova_default", KEYSTONE_CONN)
    with caplog.at_level("WARNING", logger="nova_audit"):
        NovaHook(config_file=config_file).load_config()
    assert "no_such_option" in caplog.text and "unknown" in caplog.text
    assert "ignored" not in caplog.text  # the value of no_such_option


def test_connection_replaces_the_config_files_service_sections(
    monkeypatch: pytest.MonkeyPatch, config_file: str
) -> None:
    from_file = NovaHook(config_file=config_file).load_config()
    assert from_file.placement["endpoint"] == "http://file-placement:8778"
    assert from_file.nova == {}
    set_conn(monkeypatch, "nova_default", KEYSTONE_CONN)
    from_conn = NovaHook(config_file=config_file).load_config()
    assert "endpoint" not in from_conn.placement and "token" not in from_conn.cinder
    assert from_conn.api_connection == from_file.api_connection  # only the services change
    assert from_conn.cell_connections == from_file.cell_connections


def test_a_connection_under_another_id(monkeypatch: pytest.MonkeyPatch, config_file: str) -> None:
    set_conn(monkeypatch, "nova_other", KEYSTONE_CONN)
    try:
        assert NovaHook(config_file=config_file).load_config().placement["auth_type"] == (
            "admin_token"
        )
        hook = NovaHook(nova_conn_id="nova_other", config_file=config_file)
        assert hook.load_config().placement["auth_type"] == "password"
    finally:
        monkeypatch.delenv("AIRFLOW_CONN_NOVA_OTHER")


def test_noauth_connection_with_per_service_endpoints(
    monkeypatch: pytest.MonkeyPatch, config_file: str
) -> None:
    conn = {
        "conn_type": "nova",
        "extra": {
            "auth_type": "admin_token",
            "token": "shared-tok-3",
            "placement": {"endpoint": "http://p:8778"},
            "cinder": {"endpoint": "http://c:8776/v3", "token": "cinder-tok-4"},
        },
    }
    set_conn(monkeypatch, "nova_default", conn)
    cfg = NovaHook(config_file=config_file).load_config()
    assert cfg.placement == {
        "auth_type": "admin_token",
        "endpoint": "http://p:8778",
        "token": "shared-tok-3",
    }
    assert cfg.cinder["token"] == "cinder-tok-4"
    assert cfg.nova == {"auth_type": "admin_token", "token": "shared-tok-3"}
    assert secrets.scrub("shared-tok-3 cinder-tok-4") == "*** ***"


def test_connection_without_any_auth_type_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch, config_file: str
) -> None:
    set_conn(monkeypatch, "nova_default", {"conn_type": "nova", "login": "x", "password": "y-pw"})
    with pytest.raises(ConfigError, match="nova_default has no auth_type"):
        NovaHook(config_file=config_file).load_config()


def test_api_database_precedence(monkeypatch: pytest.MonkeyPatch, config_file: str) -> None:
    spy: list[dict[str, Any]] = []
    from airflow.providers.mysql.hooks.mysql import MySqlHook

    real = MySqlHook.get_sqlalchemy_engine

    def recording(self: Any, engine_kwargs: Any = None) -> Engine:
        spy.append({"conn_id": self.mysql_conn_id, **engine_kwargs})
        return real(self, engine_kwargs=engine_kwargs)

    monkeypatch.setattr(MySqlHook, "get_sqlalchemy_engine", recording)
    hook = NovaHook(config_file=config_file)
    assert hook.api_engine() is None
    cfg = hook.load_config()
    ctx = runner.open_context("discover_hosts", cfg, {})
    assert ctx.engines.api_url == FILE_API_URL  # no connection: the config file

    set_conn(monkeypatch, "nova_api_db", API_DB_CONN)
    engine = NovaHook(config_file=config_file).api_engine()
    assert engine is not None
    assert (engine.url.host, engine.url.port, engine.url.database) == (
        "db.example",
        3307,
        "nova_api",
    )
    assert engine.url.get_backend_name() == "mysql"
    assert spy == [
        {
            "conn_id": "nova_api_db",
            "pool_pre_ping": True,
            "pool_recycle": 3600,
            "connect_args": {"connect_timeout": 10, "charset": "utf8mb4"},
        }
    ]
    ctx = runner.open_context("discover_hosts", cfg, {}, api_engine=engine)
    assert ctx.engines.api is engine  # the connection wins over the config file
    assert "conn-api-pw-91" in ctx.engines.api_url
    assert secrets.scrub(ctx.engines.api_url).count("conn-api-pw-91") == 0
    ctx.engines.dispose()


def test_api_database_connection_must_be_mysql(
    monkeypatch: pytest.MonkeyPatch, config_file: str
) -> None:
    set_conn(monkeypatch, "nova_api_db", {**API_DB_CONN, "conn_type": "postgres"})
    with pytest.raises(ConfigError, match="must be of type mysql"):
        NovaHook(config_file=config_file).api_engine()


def test_mysql_cell_connection_goes_through_mysqlhook_and_wins(
    monkeypatch: pytest.MonkeyPatch, config_file: str
) -> None:
    cell_conn = {**API_DB_CONN, "password": "cell-conn-pw-5", "schema": "nova_cell1"}
    hook = NovaHook(config_file=config_file)
    assert hook.cell_override(CELL1.uuid, CELL1.name) is None
    set_conn(monkeypatch, f"nova_cell_{CELL1.uuid}", cell_conn)
    by_uuid = hook.cell_override(CELL1.uuid, CELL1.name)
    assert isinstance(by_uuid, Engine)
    set_conn(monkeypatch, "nova_cell_cell1", {**cell_conn, "schema": "by_name"})
    by_name = hook.cell_override(CELL1.uuid, CELL1.name)
    assert isinstance(by_name, Engine) and by_name.url.database == "by_name"  # name first

    engines = Engines(FILE_API_URL, hook.load_config().cell_connections)
    assert "file-cell-pw" in engines.cell_url(CELL1)  # config file over cell_mappings
    engines.override(CELL1.uuid, by_name)
    assert engines.cell(CELL1) is by_name  # connection over the config file
    assert "cell-conn-pw-5" in engines.cell_url(CELL1)
    assert secrets.scrub(engines.cell_url(CELL1)).count("cell-conn-pw-5") == 0
    engines.dispose()


def test_other_cell_connection_types_keep_the_hand_built_url(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    set_conn(monkeypatch, "nova_cell_cell1", {**API_DB_CONN, "conn_type": "generic"})
    url = NovaHook().cell_override(CELL1.uuid, CELL1.name)
    assert url == "mysql+pymysql://nova:conn-api-pw-91@db.example:3307/nova_api?charset=utf8mb4"
    extra = {"driver": "mysql+mysqldb", "charset": "utf8"}
    set_conn(monkeypatch, "nova_cell_cell1", {**API_DB_CONN, "conn_type": "", "extra": extra})
    url = NovaHook().cell_override(CELL1.uuid, CELL1.name)
    assert url == "mysql+mysqldb://nova:conn-api-pw-91@db.example:3307/nova_api?charset=utf8"


def test_test_connection_reports_failure_without_secrets(
    monkeypatch: pytest.MonkeyPatch, config_file: str
) -> None:
    set_conn(monkeypatch, "nova_api_db", {**API_DB_CONN, "host": "127.0.0.1", "port": 1})
    ok, message = NovaHook(config_file=config_file).test_connection()
    assert not ok and "API" in message
    assert "conn-api-pw-91" not in message and "file-api-pw" not in message


def test_operators_store_connection_ids_and_open_nothing_in_init(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def refuse(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("a connection was looked up in __init__")

    monkeypatch.setattr(NovaHook, "get_connection", refuse)
    default = ListCellsOperator(task_id="list_cells", nova_task="discover_hosts")
    assert (default.get_hook().nova_conn_id, default.get_hook().api_db_conn_id) == (
        "nova_default",
        "nova_api_db",
    )
    chosen = CellTaskOperator(
        task_id="run_cell",
        nova_task="discover_hosts",
        cell={"uuid": CELL1.uuid},
        nova_conn_id="nova_east",
        api_db_conn_id="nova_api_east",
    )
    hook = chosen.get_hook()
    assert (hook.nova_conn_id, hook.api_db_conn_id) == ("nova_east", "nova_api_east")


class _Resolved(Exception):
    pass


class _FakeHook:
    def load_config(self) -> Any:
        raise _Resolved


@pytest.mark.parametrize(
    "operator",
    [
        pytest.param(ListCellsOperator, id="list_cells"),
        pytest.param(GlobalStepOperator, id="run_global"),
    ],
)
def test_execute_resolves_the_hook_through_get_hook(operator: type[Any]) -> None:
    class Custom(operator):
        def get_hook(self) -> Any:
            return _FakeHook()

    with pytest.raises(_Resolved):
        Custom(task_id="t", nova_task="discover_hosts").execute({"params": {}})


def test_cell_operator_resolves_the_hook_through_get_hook() -> None:
    class Custom(CellTaskOperator):
        def get_hook(self) -> Any:
            return _FakeHook()

    op = Custom(task_id="t", nova_task="discover_hosts", cell={"uuid": CELL1.uuid})
    with pytest.raises(_Resolved):
        op.execute({"params": {}})


def test_the_db_account_connection_replaces_the_config_files_account(
    monkeypatch: pytest.MonkeyPatch, config_file: str
) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_NOVA_DB_ACCOUNT", raising=False)
    assert NovaHook(config_file=config_file).load_config().database_account == (None, None)
    set_conn(
        monkeypatch,
        "nova_db_account",
        {"conn_type": "generic", "login": "nova_audit", "password": "acct-pw-5150"},
    )
    cfg = NovaHook(config_file=config_file).load_config()
    assert cfg.database_account == ("nova_audit", "acct-pw-5150")
    ctx = runner.open_context("discover_hosts", cfg, {})
    try:
        assert ctx.engines.api_url == "mysql+pymysql://nova_audit:acct-pw-5150@127.0.0.1:1/nova_api"
        assert secrets.scrub(ctx.engines.api_url).count("acct-pw-5150") == 0
    finally:
        ctx.engines.dispose()
    set_conn(monkeypatch, "nova_db_account", {"conn_type": "generic", "password": "x-pw-1"})
    with pytest.raises(ConfigError, match="has no login"):
        NovaHook(config_file=config_file).load_config()
