"""NovaHook: the config file and the Airflow connections of one nova-audit task run.

Sources, first found wins (the CLI reads the config file only):
- the API database: connection `nova_api_db` (conn_type mysql, through MySqlHook),
  else the config file's [api_database] connection;
- Placement, Nova's compute API and Cinder: connection `nova_default`
  (conn_type nova, keystoneauth1 options, see service_options), else the config
  file's [placement], [nova] and [cinder] sections;
- a cell database: connection `nova_cell_<cell name>` or `nova_cell_<cell uuid>`,
  else the config file's [audit.cells], else cell_mappings;
- nova-audit's own database account (login, password): connection
  `nova_db_account`, else the config file's `[audit] database_user` and
  `database_password`; it replaces the account of the config file's API URL and
  of every cell_mappings URL (docs/security.md).
"""

from __future__ import annotations

import dataclasses
import threading
from typing import Any

from airflow.sdk import BaseHook
from airflow.sdk.exceptions import AirflowNotFoundException
from sqlalchemy.engine import Engine

from nova_audit_ops import registry
from nova_audit_ops.clients import secrets
from nova_audit_ops.clients.db import check_reachable, make_engine
from nova_audit_ops.clients.placement import PlacementClient
from nova_audit_ops.glue.hooks import databases
from nova_audit_ops.glue.hooks.service_options import connection_services
from nova_audit_ops.settings.config import AuditConfig
from nova_audit_ops.settings.errors import ConfigError

CELL_CONN_PREFIX = "nova_cell_"
DEFAULT_API_DB_CONN_ID = "nova_api_db"
DEFAULT_DB_ACCOUNT_CONN_ID = "nova_db_account"

_forwarding_lock = threading.Lock()
_forwarding = False


def forward_secrets_to_airflow() -> None:
    """Teach Airflow's log masker every secret nova-audit learns of (once per process)."""
    global _forwarding
    with _forwarding_lock:
        if _forwarding:
            return
        from airflow.sdk.log import mask_secret

        secrets.add_listener(mask_secret)
        _forwarding = True


class NovaHook(BaseHook):
    """The config file with nova-audit's Airflow connections laid over it."""

    conn_name_attr = "nova_conn_id"
    default_conn_name = "nova_default"
    conn_type = "nova"
    hook_name = "Nova (nova-audit)"

    def __init__(
        self,
        *,
        nova_conn_id: str = default_conn_name,
        api_db_conn_id: str = DEFAULT_API_DB_CONN_ID,
        db_account_conn_id: str = DEFAULT_DB_ACCOUNT_CONN_ID,
        config_file: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.nova_conn_id = nova_conn_id
        self.api_db_conn_id = api_db_conn_id
        self.db_account_conn_id = db_account_conn_id
        self.config_file = config_file

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """How the connection form shows a `nova` connection."""
        return {
            "hidden_fields": ["schema", "port"],
            "relabeling": {"host": "Keystone auth URL", "login": "Username"},
            "placeholders": {
                "host": "https://keystone.example.com/v3",
                "extra": '{"auth_type": "password", "project_name": "service", '
                '"user_domain_name": "Default", "project_domain_name": "Default", '
                '"region_name": "RegionOne", "cinder": {"valid_interfaces": "internal"}}',
            },
        }

    def get_conn(self) -> AuditConfig:
        """The run's effective config (what this hook connects nova-audit with)."""
        return self.load_config()

    def find_connection(self, conn_id: str) -> Any | None:
        """The connection `conn_id` or None; from now on secrets reach Airflow's masker."""
        forward_secrets_to_airflow()
        try:
            return self.get_connection(conn_id)
        except AirflowNotFoundException:
            return None

    def load_config(self) -> AuditConfig:
        """The config file, with [placement]/[nova]/[cinder] from `nova_conn_id` and the
        database account from `db_account_conn_id`, where they exist."""
        config = self.with_db_account(registry.load_config(self.config_file))
        conn = self.find_connection(self.nova_conn_id)
        if conn is None:
            return config
        services = connection_services(conn)
        return dataclasses.replace(
            config,
            placement=services["placement"],
            nova=services["nova"],
            cinder=services["cinder"],
        )

    def with_db_account(self, config: AuditConfig) -> AuditConfig:
        """The config with `[audit] database_user`/`_password` from `db_account_conn_id`."""
        conn = self.find_connection(self.db_account_conn_id)
        if conn is None:
            return config
        if not conn.login:
            raise ConfigError(
                f"connection {self.db_account_conn_id} has no login: set it to nova-audit's "
                "database user (and its password), or delete the connection"
            )
        secrets.register(conn.password)
        values = {**config.global_values, "database_user": conn.login}
        values["database_password"] = conn.password or None
        return dataclasses.replace(config, global_values=values)

    def api_engine(self) -> Engine | None:
        """The API database engine of connection `api_db_conn_id` (mysql), if it exists."""
        conn = self.find_connection(self.api_db_conn_id)
        if conn is None:
            return None
        if conn.conn_type != databases.MYSQL:
            raise ConfigError(
                f"connection {self.api_db_conn_id} is of type {conn.conn_type!r}: the API "
                "database connection must be of type mysql"
            )
        return databases.mysql_engine(conn)

    def cell_override(self, uuid: str, name: str | None) -> str | Engine | None:
        """The database of a `nova_cell_<name>` or `nova_cell_<uuid>` connection, if any."""
        for key in (name, uuid):
            conn = self.find_connection(CELL_CONN_PREFIX + key) if key else None
            if conn is not None:
                return databases.database(conn)
        return None

    def test_connection(self) -> tuple[bool, str]:
        """Reach the API database (SELECT 1) and Placement's root; no secret in the message."""
        try:
            config = self.load_config()
            engine = self.api_engine() or make_engine(config.require_api_connection(), "API")
            try:
                check_reachable(engine, "API")
            finally:
                engine.dispose()
            if not config.placement:
                return False, "API database answers; no Placement options (connection or config)"
            PlacementClient.from_options(config.placement).max_microversion()
        except Exception as exc:  # the UI shows any failure as a message
            return False, secrets.scrub(f"{type(exc).__name__}: {exc}")
        return True, "API database and Placement answer"
