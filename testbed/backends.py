"""Where a test bed's databases live: MariaDB databases or SQLite files.

Both backends name a bed's databases after its directory, so any number of beds
can sit side by side: MariaDB databases are `nat_<sha1(dir)[:8]>_<role>` (roles:
api, cell0, cell1.., placement), SQLite files are `<dir>/nova_<role>.sqlite`.

MariaDB beds connect as the user `natb` with a real password (kept on the
MariaDB server in `natb_meta.secret`, one per server, because the user is
shared by every bed and every checkout): `cell_mappings.database_connection` then holds a secret, as
on a real cloud, and the product's masking can be tested against it.
"""

from __future__ import annotations

import functools
import hashlib
import os
import secrets
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from testbed.errors import TestBedError
from testbed.threads import in_parallel
from testbed.tools import REPO

ADMIN_URL_ENV = "NOVA_AUDIT_TESTBED_ADMIN_URL"
DEFAULT_ADMIN_URL = "mysql+pymysql://root@127.0.0.1:3306/?charset=utf8mb4"
STATE_DIR_ENV = "NOVA_AUDIT_TESTBED_STATE"
DB_USER = "natb"
DB_PREFIX = "nat_"

_user_lock = threading.Lock()


def prefix_for(directory: Path) -> str:
    """`nat_<8 hex>`: the same directory always gets the same database names."""
    digest = hashlib.sha1(str(directory.resolve()).encode(), usedforsecurity=False).hexdigest()
    return f"{DB_PREFIX}{digest[:8]}"


class Backend(Protocol):
    """What the bed needs from a database server."""

    name: str

    def url(self, directory: Path, prefix: str, role: str) -> str: ...

    def create(self, urls: Iterable[str]) -> None: ...

    def drop(self, directory: Path, prefix: str) -> list[str]: ...

    def copy(self, pairs: Iterable[tuple[str, str]]) -> None: ...

    def refresh(self, pairs: Iterable[tuple[str, str]]) -> None: ...


def get_backend(name: str) -> Backend:
    if name == "mariadb":
        return MariaDB()
    if name == "sqlite":
        return SQLite()
    raise TestBedError(f"unknown backend {name!r}: use mariadb or sqlite")


# --------------------------------------------------------------------------- SQLite


class SQLite:
    """One file per database in the bed's directory; copies are file copies."""

    name = "sqlite"

    def url(self, directory: Path, prefix: str, role: str) -> str:
        return f"sqlite:///{(directory / f'nova_{role}.sqlite').resolve()}"

    def create(self, urls: Iterable[str]) -> None:
        for url in urls:
            path = Path(str(make_url(url).database))
            path.parent.mkdir(parents=True, exist_ok=True)
            path.unlink(missing_ok=True)

    def drop(self, directory: Path, prefix: str) -> list[str]:
        dropped = []
        for path in sorted(directory.glob("nova_*.sqlite*")):
            path.unlink(missing_ok=True)
            dropped.append(str(path))
        return dropped

    def copy(self, pairs: Iterable[tuple[str, str]]) -> None:
        for src, dst in pairs:
            dst_path = Path(str(make_url(dst).database))
            dst_path.parent.mkdir(parents=True, exist_ok=True)
            # The SQLite online backup API gives a consistent copy even while open.
            import sqlite3

            with (
                sqlite3.connect(str(make_url(src).database)) as s,
                sqlite3.connect(dst_path) as d,
            ):
                s.backup(d)

    def refresh(self, pairs: Iterable[tuple[str, str]]) -> None:
        self.copy(pairs)


# --------------------------------------------------------------------------- MariaDB


def admin_url() -> str:
    return os.environ.get(ADMIN_URL_ENV, DEFAULT_ADMIN_URL)


def state_dir() -> Path:
    return Path(os.environ.get(STATE_DIR_ENV) or REPO / ".testbeds")


@contextmanager
def admin_connection(database: str | None = None) -> Iterator[sa.Connection]:
    """A root connection to the MariaDB server, with a clear error if it is down."""
    url = make_url(admin_url())
    if database:
        url = url.set(database=database)
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        try:
            conn = engine.connect()
        except sa.exc.OperationalError as exc:
            raise TestBedError(
                f"MariaDB is not reachable at {url.render_as_string(hide_password=True)} "
                f"({exc.orig}). Start it with `make mariadb` (or `start-stop-daemon --start "
                f"--background --exec /usr/sbin/mariadbd`), or point {ADMIN_URL_ENV} at a "
                "server where this user may create databases and users."
            ) from None
        with conn:
            yield conn
    finally:
        engine.dispose()


def mariadb_available() -> str | None:
    """None when MariaDB answers, else the error message explaining how to start it."""
    try:
        with admin_connection() as conn:
            conn.execute(sa.text("SELECT 1"))
    except TestBedError as exc:
        return str(exc)
    return None


class MariaDB:
    """Databases on one MariaDB server, reached as the shared `natb` user."""

    name = "mariadb"

    def __init__(self) -> None:
        self._password: str | None = None

    # The natb user -----------------------------------------------------------------

    def password(self) -> str:
        if self._password is None:
            self._password = ensure_user()
        return self._password

    def url(self, directory: Path, prefix: str, role: str) -> str:
        admin = make_url(admin_url())
        host, port = admin.host or "127.0.0.1", admin.port or 3306
        return (
            f"mysql+pymysql://{DB_USER}:{self.password()}@{host}:{port}/"
            f"{prefix}_{role}?charset=utf8mb4"
        )

    # Databases ------------------------------------------------------------------------

    def create(self, urls: Iterable[str]) -> None:
        with admin_connection() as conn:
            for url in urls:
                name = _db_name(url)
                run(conn, f"DROP DATABASE IF EXISTS `{name}`")
                run(conn, f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")

    def drop(self, directory: Path, prefix: str) -> list[str]:
        with admin_connection() as conn:
            like = prefix.replace("_", "\\_") + "\\_%"
            names = [row[0] for row in run(conn, f"SHOW DATABASES LIKE '{like}'")]
            for name in names:
                run(conn, f"DROP DATABASE IF EXISTS `{name}`")
        return names

    def copy(self, pairs: Iterable[tuple[str, str]]) -> None:
        """Copy databases concurrently, one connection (and thread) per database."""
        self._each(copy_database, pairs)

    def refresh(self, pairs: Iterable[tuple[str, str]]) -> None:
        """Make existing copies equal to their sources again (see refresh_database)."""
        self._each(refresh_database, pairs)

    @staticmethod
    def _each(fn: Callable[[str, str], None], pairs: Iterable[tuple[str, str]]) -> None:
        jobs = [(_db_name(src), _db_name(dst)) for src, dst in pairs]
        in_parallel(*(functools.partial(fn, src, dst) for src, dst in jobs))


def run(conn: sa.Connection, statement: str) -> Any:
    """A literal statement through PyMySQL, whose paramstyle would eat a bare `%`."""
    return conn.exec_driver_sql(statement.replace("%", "%%"))


def _copy_session(conn: sa.Connection) -> None:
    """Copy rows verbatim: no FK checks mid-copy, and an id of 0 stays 0 (Placement's VCPU
    resource class has id 0; by default MariaDB would give it a new AUTO_INCREMENT id)."""
    run(conn, "SET SESSION foreign_key_checks = 0")
    run(conn, "SET SESSION sql_mode = CONCAT(@@sql_mode, ',NO_AUTO_VALUE_ON_ZERO')")


def _db_name(url: str) -> str:
    name = make_url(url).database
    if not name or not name.startswith(DB_PREFIX):
        raise TestBedError(f"refusing to touch database {name!r}: not a test bed database")
    return name


def copy_database(src: str, dst: str) -> None:
    """Same tables (with foreign keys and AUTO_INCREMENT counters) and the same rows.

    `CREATE TABLE ... LIKE` would drop foreign keys, so each table is recreated from
    its own `SHOW CREATE TABLE`; rows go over with `INSERT ... SELECT` inside the
    server, and only for tables that have any.
    """
    with admin_connection() as conn:
        _copy_session(conn)
        run(conn, f"DROP DATABASE IF EXISTS `{dst}`")
        run(conn, f"CREATE DATABASE `{dst}` CHARACTER SET utf8mb4")
        tables = [
            row[0]
            for row in run(
                conn,
                "SELECT table_name FROM information_schema.tables "
                f"WHERE table_schema = '{src}' AND table_type = 'BASE TABLE'",
            )
        ]
        ddl = [run(conn, f"SHOW CREATE TABLE `{src}`.`{t}`").one()[1] for t in tables]
        run(conn, f"USE `{dst}`")
        for statement in ddl:
            run(conn, statement)
        for table in tables:
            has_rows = run(conn, f"SELECT 1 FROM `{src}`.`{table}` LIMIT 1").first()
            if has_rows:
                run(conn, f"INSERT INTO `{dst}`.`{table}` SELECT * FROM `{src}`.`{table}`")
        conn.commit()


def _schema(conn: sa.Connection, db: str) -> tuple[Any, ...]:
    """Tables, columns and indexes of a database: enough to notice any DDL."""
    columns = run(
        conn,
        "SELECT table_name, column_name, column_type, is_nullable, column_default, extra "
        f"FROM information_schema.columns WHERE table_schema = '{db}' "
        "ORDER BY table_name, ordinal_position",
    ).all()
    indexes = run(
        conn,
        "SELECT table_name, index_name, non_unique, seq_in_index, column_name "
        f"FROM information_schema.statistics WHERE table_schema = '{db}' "
        "ORDER BY table_name, index_name, seq_in_index",
    ).all()
    keys = run(
        conn,
        "SELECT table_name, constraint_name, referenced_table_name "
        f"FROM information_schema.referential_constraints WHERE constraint_schema = '{db}' "
        "ORDER BY table_name, constraint_name",
    ).all()
    return tuple(map(tuple, columns)), tuple(map(tuple, indexes)), tuple(map(tuple, keys))


def _checksums(conn: sa.Connection, db: str, tables: list[str]) -> dict[str, Any]:
    if not tables:
        return {}
    rows = run(conn, "CHECKSUM TABLE " + ", ".join(f"`{db}`.`{t}`" for t in tables)).all()
    return {str(r[0]).split(".", 1)[1]: r[1] for r in rows}


def _auto_increments(conn: sa.Connection, db: str) -> dict[str, Any]:
    rows = run(
        conn,
        "SELECT table_name, auto_increment FROM information_schema.tables "
        f"WHERE table_schema = '{db}' AND table_type = 'BASE TABLE'",
    ).all()
    return {r[0]: r[1] for r in rows}


def refresh_database(src: str, dst: str) -> None:
    """Turn `dst`, an earlier copy of `src`, back into an exact copy, cheaply.

    Re-creating ~110 tables costs ~0.7 s per cell database; a test changes a few
    rows in a few tables. So: if the schemas still match, only tables whose
    CHECKSUM TABLE differs are emptied and refilled, and AUTO_INCREMENT counters
    are set back to the source's. Any schema difference means a full copy.
    """
    with admin_connection() as conn:
        exists = run(conn, f"SHOW DATABASES LIKE '{dst.replace('_', chr(92) + '_')}'").first()
        if not exists or _schema(conn, src) != _schema(conn, dst):
            copy_database(src, dst)
            return
        _copy_session(conn)
        tables = list(_auto_increments(conn, src))
        theirs, ours = _checksums(conn, src, tables), _checksums(conn, dst, tables)
        for table in tables:
            if theirs[table] != ours[table]:
                run(conn, f"DELETE FROM `{dst}`.`{table}`")
                run(conn, f"INSERT INTO `{dst}`.`{table}` SELECT * FROM `{src}`.`{table}`")
        conn.commit()
        counters, current = _auto_increments(conn, src), _auto_increments(conn, dst)
        for table, value in counters.items():
            if value is not None and current.get(table) != value:
                run(conn, f"ALTER TABLE `{dst}`.`{table}` AUTO_INCREMENT = {int(value)}")


def ensure_user() -> str:
    """Create (once) the `natb` user that every MariaDB bed uses; return its password.

    The password lives on the MariaDB server itself (database `natb_meta`, root
    only), so every checkout and CI run on this machine uses the same one; a
    password kept per checkout would let one test session lock out another's.
    """
    with _user_lock:
        with admin_connection() as conn:
            run(conn, "CREATE DATABASE IF NOT EXISTS natb_meta")
            run(
                conn,
                "CREATE TABLE IF NOT EXISTS natb_meta.secret "
                "(name VARCHAR(64) PRIMARY KEY, value VARCHAR(255) NOT NULL)",
            )
            candidate = "natb" + secrets.token_hex(12)
            run(conn, f"INSERT IGNORE INTO natb_meta.secret VALUES ('{DB_USER}', '{candidate}')")
            conn.commit()
            password = conn.execute(
                sa.text("SELECT value FROM natb_meta.secret WHERE name = :n"), {"n": DB_USER}
            ).scalar_one()
        if not _password_works(password):
            with admin_connection() as conn:
                for host in ("127.0.0.1", "localhost"):
                    user = f"'{DB_USER}'@'{host}'"
                    run(conn, f"CREATE USER IF NOT EXISTS {user} IDENTIFIED BY '{password}'")
                    run(conn, f"ALTER USER {user} IDENTIFIED BY '{password}'")
                    run(conn, f"GRANT ALL PRIVILEGES ON `nat\\_%`.* TO {user}")
        return str(password)


def _password_works(password: str) -> bool:
    admin = make_url(admin_url())
    url = admin.set(username=DB_USER, password=password, database=None)
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            grants = " ".join(str(r[0]) for r in run(conn, "SHOW GRANTS"))
        return "nat\\_%" in grants
    except sa.exc.OperationalError:
        return False
    finally:
        engine.dispose()
