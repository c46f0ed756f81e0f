"""SQLAlchemy engines for the API and cell databases, with masked URLs.

Nova's URLs carry passwords: every one is registered with the secrets module
before anything can log it, and errors show the URL with the password hidden.
"""

from __future__ import annotations

import importlib.metadata
import logging
import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

from nova_audit_ops.clients import secrets
from nova_audit_ops.clients.read_only import make_read_only
from nova_audit_ops.nova.cells import Cell
from nova_audit_ops.settings.errors import ConfigError, DatabaseUnreachableError

Account = tuple[str | None, str | None]  # (user, password); (None, None): the URLs' own
NO_ACCOUNT: Account = (None, None)
CONNECT_TIMEOUT = 10
POOL_RECYCLE = 3600  # seconds; below MariaDB's wait_timeout and most proxies' idle limits
LOG = logging.getLogger("nova_audit")


def mask_url(url: str) -> str:
    """The URL with its password replaced, safe for logs and errors."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return "<unparseable database URL>"


def register_url_secret(url: str) -> None:
    """Teach the secrets module the password inside a database URL."""
    try:
        secrets.register(make_url(url).password)
    except (ArgumentError, ValueError):
        secrets.register(url)


def with_account(url: str, account: Account) -> str:
    """The URL with nova-audit's own database account in place of the one it names.

    SQLite has no accounts, and a URL that does not parse is left for make_engine
    to refuse with its own message.
    """
    user, password = account
    if not user:
        return url
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        return url
    if parsed.get_backend_name() == "sqlite":
        return url
    secrets.register(password)
    return parsed.set(username=user, password=password).render_as_string(hide_password=False)


def _without_missing_plugins(parsed: URL, label: str) -> URL:
    """Drop `plugin=` query values naming SQLAlchemy plugins not installed here.

    Devstack adds `plugin=dbcounter` (its own query-counting plugin) to every Nova
    database URL, cell_mappings included; nova-audit has no use for it, and an
    unknown plugin would make SQLAlchemy refuse the URL.
    """
    wanted = parsed.query.get("plugin")
    if not wanted:
        return parsed
    names = [wanted] if isinstance(wanted, str) else list(wanted)
    installed = {ep.name for ep in importlib.metadata.entry_points(group="sqlalchemy.plugins")}
    keep = [name for name in names if name in installed]
    if keep == names:
        return parsed
    LOG.info(
        "%s: ignoring SQLAlchemy plugin(s) %s (not installed)",
        label,
        sorted(set(names) - set(keep)),
    )
    parsed = parsed.difference_update_query(["plugin"])
    return parsed.update_query_dict({"plugin": keep}) if keep else parsed


def mysql_engine_options() -> dict[str, Any]:
    """create_engine arguments of every MySQL/MariaDB engine: checked, recycled, bounded."""
    return {
        "pool_pre_ping": True,
        "pool_recycle": POOL_RECYCLE,
        "connect_args": {"connect_timeout": CONNECT_TIMEOUT},
    }


def make_engine(url: str, label: str) -> Engine:
    """An engine for one Nova database; nothing connects until first use."""
    register_url_secret(url)
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        raise ConfigError(f"{label}: database URL is not a valid SQLAlchemy URL") from None
    parsed = _without_missing_plugins(parsed, label)
    kwargs: dict[str, Any] = {"pool_pre_ping": True, "future": True}
    if parsed.get_backend_name() == "sqlite":
        kwargs["connect_args"] = {"timeout": 30}
    elif parsed.get_backend_name() == "mysql":
        kwargs.update(mysql_engine_options())
    try:
        return sa.create_engine(parsed, **kwargs)
    except (NoSuchModuleError, ImportError) as exc:
        raise ConfigError(
            f"{label}: no driver for {mask_url(url)} ({exc}); install it into nova-audit's "
            "environment (PyMySQL and mysqlclient ship with nova-audit)."
        ) from None


def unreachable(label: str, url: str, exc: BaseException) -> DatabaseUnreachableError:
    """An operator-facing error for a database that failed, password scrubbed."""
    reason = secrets.scrub(str(getattr(exc, "orig", None) or exc)).splitlines()[0]
    return DatabaseUnreachableError(
        f"{label} database at {mask_url(url)} cannot be used: {reason}. Check that it is "
        "reachable from this worker, or override its URL in [audit.cells] or with an "
        "Airflow connection."
    )


def check_reachable(engine: Engine, label: str) -> None:
    """Fail early, with a clear message, if a database does not answer."""
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except SQLAlchemyError as exc:
        raise unreachable(label, engine.url.render_as_string(hide_password=False), exc) from None


def fill_template(cell: Cell, url: str, default: str | None) -> str:
    """Nova lets cell_mappings hold URL templates such as `{scheme}://{username}:...`,
    filled from nova.conf's [database] connection; do the same."""
    if not url or "{" not in url:
        return url
    if not default:
        raise ConfigError(
            f"cell {cell.label}'s database_connection is a template: set [database] "
            "connection in the config file (the value from nova.conf) to fill it"
        )
    parts = urlsplit(default)
    subs = {
        "username": parts.username,
        "password": parts.password,
        "hostname": parts.hostname,
        "port": parts.port,
        "scheme": parts.scheme,
        "query": parts.query,
        "fragment": parts.fragment,
        "path": parts.path.lstrip("/"),
    }
    try:
        return url.format(**subs)
    except (KeyError, IndexError, ValueError) as exc:
        raise ConfigError(
            f"cell {cell.label}'s database_connection template cannot be filled ({exc!r}): "
            "check it with `nova-manage cell_v2 list_cells --verbose`"
        ) from None


class Engines:
    """The API engine plus one engine per cell, created on first use and reused.

    The API engine, and any cell's, may be handed in pre-built (the Airflow glue
    builds them from Airflow connections); their passwords are registered too.
    With `read_only` (audit runs) every engine's sessions refuse writes. An
    `account` replaces the user and password of the API URL and of every URL
    from cell_mappings; overrides and pre-built engines keep their own.
    """

    def __init__(
        self,
        api_url: str | None,
        overrides: Mapping[str, str] | None = None,
        template_default: str | None = None,
        *,
        api_engine: Engine | None = None,
        read_only: bool = False,
        account: Account = NO_ACCOUNT,
    ) -> None:
        self.template_default = template_default
        self.read_only = read_only
        self.account = account
        secrets.register(account[1])
        if template_default:
            register_url_secret(template_default)
        if api_engine is not None:
            self.api = api_engine
            self.api_url = _registered_url(api_engine)
        elif api_url:
            self.api_url = with_account(api_url, account)
            self.api = make_engine(self.api_url, "API")
        else:
            raise ConfigError("no API database: set [api_database] connection in the config file")
        if read_only:
            make_read_only(self.api)
        self._overrides = dict(overrides or {})
        for url in self._overrides.values():
            register_url_secret(url)
        self._prebuilt: dict[str, Engine] = {}
        self._cells: dict[str, Engine] = {}
        self._lock = threading.Lock()

    def override(self, key: str, target: str | Engine) -> None:
        """Reach the cell named or uuid'd `key` at a URL or pre-built engine (before first use)."""
        if isinstance(target, Engine):
            self._prebuilt[key] = target
            self._overrides[key] = _registered_url(target)
        else:
            register_url_secret(target)
            self._prebuilt.pop(key, None)
            self._overrides[key] = target

    def _override_key(self, cell: Cell) -> str | None:
        if self._overrides.get(cell.uuid):
            return cell.uuid
        if cell.name and self._overrides.get(cell.name):
            return cell.name
        return None

    def cell_url(self, cell: Cell) -> str:
        """The cell's URL: an override by uuid or name, else cell_mappings (with the account)."""
        key = self._override_key(cell)
        if key:
            return self._overrides[key]
        url = fill_template(cell, cell.database_connection, self.template_default)
        if not url:
            raise ConfigError(
                f"cell {cell.label} has no database_connection in cell_mappings: set one with "
                "`nova-manage cell_v2 update_cell` or override it in [audit.cells]."
            )
        return with_account(url, self.account)

    def cell(self, cell: Cell) -> Engine:
        with self._lock:
            engine = self._cells.get(cell.uuid)
            if engine is None:
                key = self._override_key(cell)
                engine = self._prebuilt.get(key) if key else None
                engine = engine or make_engine(self.cell_url(cell), f"cell {cell.label}")
                if self.read_only:
                    make_read_only(engine)
                self._cells[cell.uuid] = engine
            return engine

    def dispose(self) -> None:
        unused = [e for e in self._prebuilt.values() if e not in self._cells.values()]
        for engine in [self.api, *self._cells.values(), *unused]:
            engine.dispose()


def _registered_url(engine: Engine) -> str:
    """A pre-built engine's URL (password included), its password registered first."""
    secrets.register(engine.url.password)
    return engine.url.render_as_string(hide_password=False)
