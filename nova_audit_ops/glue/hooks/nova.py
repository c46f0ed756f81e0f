"""NovaHook: where a worker finds the config file and per-cell database overrides.

The config file comes from $NOVA_AUDIT_CONFIG (the same file the CLI reads).
A worker that reaches a cell database by another address than the one in
cell_mappings gets an Airflow connection named `nova_cell_<cell name>` (or
`nova_cell_<cell uuid>`) with host, port, login, password and schema (the
database); extra `{"driver": ...}` picks the SQLAlchemy driver (default
mysql+pymysql). It replaces the cell's database_connection.
"""

from __future__ import annotations

from airflow.sdk import BaseHook
from airflow.sdk.exceptions import AirflowNotFoundException
from sqlalchemy.engine import URL

from nova_audit_ops import registry
from nova_audit_ops.clients import secrets
from nova_audit_ops.clients.db import register_url_secret
from nova_audit_ops.settings.config import AuditConfig

CELL_CONN_PREFIX = "nova_cell_"


_forwarding = False


def _forward_to_airflow_masker() -> None:
    """Teach Airflow's log masker every password nova-audit learns of (once per process)."""
    global _forwarding
    if _forwarding:
        return
    from airflow.sdk.log import mask_secret

    secrets.add_listener(mask_secret)
    _forwarding = True


class NovaHook(BaseHook):
    """Config and cell-connection overrides for one task run inside Airflow."""

    hook_name = "Nova (nova-audit)"

    def __init__(self, config_file: str | None = None) -> None:
        super().__init__()
        self.config_file = config_file
        _forward_to_airflow_masker()

    def load_config(self) -> AuditConfig:
        """The validated config file ($NOVA_AUDIT_CONFIG unless given)."""
        return registry.load_config(self.config_file)

    def cell_override(self, uuid: str, name: str | None) -> str | None:
        """The database URL of a `nova_cell_<name>` or `nova_cell_<uuid>` connection, if any."""
        for key in (name, uuid):
            url = self._connection_uri(CELL_CONN_PREFIX + key) if key else None
            if url:
                return url
        return None

    def _connection_uri(self, conn_id: str) -> str | None:
        try:
            conn = self.get_connection(conn_id)
        except AirflowNotFoundException:
            return None
        secrets.register(conn.password)
        driver = str(conn.extra_dejson.get("driver") or "mysql+pymysql")
        url = URL.create(
            driver,
            username=conn.login or None,
            password=conn.password or None,
            host=conn.host or None,
            port=conn.port or None,
            database=conn.schema or None,
            query={"charset": str(conn.extra_dejson.get("charset") or "utf8mb4")},
        ).render_as_string(hide_password=False)
        register_url_secret(url)
        return url
