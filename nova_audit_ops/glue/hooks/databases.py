"""Engines and URLs for Nova databases from Airflow connections.

A connection of conn_type `mysql` goes through the MySQL provider's MySqlHook
(its extras: `client`, `charset`, `ssl`, ...), with the pool settings of
clients/db.make_engine. Any other conn_type is turned into a URL by hand, as
before: extra `driver` picks the SQLAlchemy driver (default mysql+pymysql) and
`charset` the character set (default utf8mb4).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import URL, Engine
from sqlalchemy.exc import NoSuchModuleError

from nova_audit_ops.clients import secrets
from nova_audit_ops.clients.db import mysql_engine_options, register_url_secret
from nova_audit_ops.settings.errors import ConfigError

MYSQL = "mysql"
DEFAULT_CHARSET = "utf8mb4"


def engine_kwargs(conn: Any) -> dict[str, Any]:
    """The create_engine arguments nova-audit uses for every MySQL database."""
    options = mysql_engine_options()
    if not conn.extra_dejson.get("charset"):
        options["connect_args"]["charset"] = DEFAULT_CHARSET
    return options


def mysql_engine(conn: Any) -> Engine:
    """An engine built by MySqlHook from a `mysql` connection; nothing connects yet."""
    try:
        from airflow.providers.mysql.hooks.mysql import MySqlHook
    except ImportError:
        raise ConfigError(
            f"connection {conn.conn_id} is of type mysql but the MySQL provider is missing: "
            "pip install apache-airflow-providers-mysql"
        ) from None
    secrets.register(conn.password)
    hook = MySqlHook(mysql_conn_id=conn.conn_id, connection=conn)
    try:
        engine: Engine = hook.get_sqlalchemy_engine(engine_kwargs=engine_kwargs(conn))
    except (NoSuchModuleError, ImportError) as exc:
        raise ConfigError(
            f"connection {conn.conn_id}: no database driver ({secrets.scrub(str(exc))}); "
            'install it or choose another with extra "client"'
        ) from None
    secrets.register(engine.url.password)
    return engine


def hand_built_url(conn: Any) -> str:
    """The database URL of a connection of another type (host, port, login, password, schema)."""
    secrets.register(conn.password)
    extra = conn.extra_dejson
    url = URL.create(
        str(extra.get("driver") or "mysql+pymysql"),
        username=conn.login or None,
        password=conn.password or None,
        host=conn.host or None,
        port=conn.port or None,
        database=conn.schema or None,
        query={"charset": str(extra.get("charset") or DEFAULT_CHARSET)},
    ).render_as_string(hide_password=False)
    register_url_secret(url)
    return url


def database(conn: Any) -> str | Engine:
    """A cell override: an engine for a `mysql` connection, else a hand-built URL."""
    return mysql_engine(conn) if conn.conn_type == MYSQL else hand_built_url(conn)
