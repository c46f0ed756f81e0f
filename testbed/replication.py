"""A real MariaDB primary and replica on their own loopback ports, for the lag guard.

The system MariaDB (3306) has no binary log, so it cannot be a primary. This
starts two private `mariadbd` processes under a directory: the primary with
`--log-bin --server-id=1`, the replica with `--server-id=2`, replicating from
the primary's first binlog (CHANGE MASTER TO ... + START SLAVE), so whatever is
later loaded into the primary reaches the replica. Lag is made in tests the
way it happens in life: a lock on the replica holds its SQL thread back.

The replica has a monitoring account with a real password (`watch`, SLAVE
MONITOR only), so the guard's URL holds a secret as it would in production.

pair = start(Path("/tmp/repl")); copy_database(cell_url, pair.primary_url("nova_cell1"))
...; stop(pair)
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from testbed.errors import TestBedError

MARIADBD = "/usr/sbin/mariadbd"
INSTALL_DB = "mariadb-install-db"
DUMP = "mariadb-dump"
CLIENT = "mariadb"
WATCH_USER = "watch"


@dataclass
class Server:
    """One private mariadbd: its process, port and data directory."""

    name: str
    port: int
    datadir: Path
    socket: Path
    proc: subprocess.Popen[bytes]

    @property
    def admin_url(self) -> str:
        return f"mysql+pymysql://root@127.0.0.1:{self.port}/?charset=utf8mb4"


@dataclass
class Pair:
    """A primary, its replica, and the password of the replica's monitoring account."""

    directory: Path
    primary: Server
    replica: Server
    watch_password: str

    def primary_url(self, database: str) -> str:
        return f"mysql+pymysql://root@127.0.0.1:{self.primary.port}/{database}?charset=utf8mb4"

    def replica_url(self, database: str = "") -> str:
        return f"mysql+pymysql://root@127.0.0.1:{self.replica.port}/{database}?charset=utf8mb4"

    @property
    def watch_url(self) -> str:
        """The URL an operator puts in `[audit] replica_connections` (it holds a password)."""
        return (
            f"mysql+pymysql://{WATCH_USER}:{self.watch_password}@127.0.0.1:"
            f"{self.replica.port}/?charset=utf8mb4"
        )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_server(directory: Path, name: str, server_id: int, log_bin: bool) -> Server:
    datadir = directory / name
    shutil.rmtree(datadir, ignore_errors=True)
    subprocess.run(
        [
            INSTALL_DB,
            "--no-defaults",
            f"--datadir={datadir}",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
            "--user=" + _user(),
        ],
        check=True,
        capture_output=True,
    )
    # A unix socket path must stay short (108 bytes): keep it out of deep test dirs.
    sock = Path(tempfile.gettempdir()) / f"nat-repl-{os.getpid()}-{server_id}-{time.time_ns()}.sock"
    for _attempt in range(5):
        port = _free_port()
        args = [
            MARIADBD,
            "--no-defaults",
            f"--datadir={datadir}",
            f"--port={port}",
            "--bind-address=127.0.0.1",
            f"--socket={sock}",
            f"--server-id={server_id}",
            "--user=" + _user(),
            "--innodb-buffer-pool-size=32M",
            "--skip-innodb-doublewrite",
            "--innodb-flush-log-at-trx-commit=2",
            "--performance-schema=OFF",
            f"--log-error={datadir}/error.log",
            f"--pid-file={datadir}/mariadbd.pid",
        ]
        if log_bin:
            args += [f"--log-bin={datadir}/binlog", "--binlog-format=ROW"]
        else:
            args += ["--read-only", "--relay-log=relay"]
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        server = Server(name, port, datadir, sock, proc)
        if _wait_ready(server):
            return server
        _terminate(server)
    raise TestBedError(f"{name} mariadbd did not start: see {datadir}/error.log")


def _user() -> str:
    import pwd

    return pwd.getpwuid(os.getuid()).pw_name


def _wait_ready(server: Server, timeout: float = 30.0) -> bool:
    end = time.monotonic() + timeout
    engine = sa.create_engine(server.admin_url, poolclass=sa.pool.NullPool)
    try:
        while time.monotonic() < end:
            if server.proc.poll() is not None:
                return False  # e.g. the port was taken meanwhile
            try:
                with engine.connect() as conn:
                    conn.execute(sa.text("SELECT 1"))
                return True
            except sa.exc.OperationalError:
                time.sleep(0.1)
        return False
    finally:
        engine.dispose()


def execute(url: str, *statements: str) -> None:
    """Run statements on one connection, autocommitted."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            for sql in statements:
                conn.execute(sa.text(sql))
    finally:
        engine.dispose()


def start(directory: Path) -> Pair:
    """Start a primary and a replica under `directory`; replication is running on return."""
    directory = Path(directory).resolve()
    directory.mkdir(parents=True, exist_ok=True)
    primary = _start_server(directory, "primary", 1, log_bin=True)
    try:
        replica = _start_server(directory, "replica", 2, log_bin=False)
    except BaseException:
        _terminate(primary)
        raise
    pair = Pair(directory, primary, replica, "w-" + secrets.token_hex(8))
    try:
        execute(
            primary.admin_url,
            "CREATE USER 'repl'@'127.0.0.1' IDENTIFIED BY 'repl-pass'",
            "GRANT REPLICATION SLAVE ON *.* TO 'repl'@'127.0.0.1'",
        )
        execute(
            replica.admin_url,
            f"CREATE USER '{WATCH_USER}'@'%' IDENTIFIED BY '{pair.watch_password}'",
            f"GRANT SLAVE MONITOR ON *.* TO '{WATCH_USER}'@'%'",
            f"CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT={primary.port}, "
            "MASTER_USER='repl', MASTER_PASSWORD='repl-pass', "
            "MASTER_LOG_FILE='binlog.000001', MASTER_LOG_POS=4",
            "START SLAVE",
        )
        wait_caught_up(pair)
    except BaseException:
        stop(pair)
        raise
    return pair


def _status_row(url: str, sql: str) -> dict[str, object] | None:
    """The one row of a SHOW ... STATUS statement, or None, on a connection of its own."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            row = conn.execute(sa.text(sql)).mappings().first()
    finally:
        engine.dispose()
    return None if row is None else dict(row)


def slave_status(pair: Pair) -> dict[str, object]:
    row = _status_row(pair.replica.admin_url, "SHOW SLAVE STATUS")
    if row is None:
        raise TestBedError("the replica has no replication configured")
    return row


def wait_caught_up(pair: Pair, timeout: float = 60.0) -> None:
    """Wait until the replica applied everything the primary logged so far."""
    status = _status_row(pair.primary.admin_url, "SHOW MASTER STATUS")
    if status is None:
        raise TestBedError("the primary writes no binary log")
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        row = slave_status(pair)
        if row.get("Slave_SQL_Running") != "Yes" or row.get("Slave_IO_Running") == "No":
            raise TestBedError(f"replication stopped: {row.get('Last_Error') or row}")
        if row.get("Relay_Master_Log_File") == status["File"] and int(
            str(row.get("Exec_Master_Log_Pos"))
        ) >= int(str(status["Position"])):
            return
        time.sleep(0.1)
    raise TestBedError(f"the replica did not catch up within {timeout} s")


def copy_database(src_url: str, dst_url: str) -> None:
    """Copy one database (schema and rows) to another server with mariadb-dump."""
    src, dst = make_url(src_url), make_url(dst_url)
    execute(
        str(dst.set(database="").render_as_string(hide_password=False)),
        f"CREATE DATABASE IF NOT EXISTS `{dst.database}`",
    )
    dump = subprocess.Popen(
        [DUMP, *_client_args(src), "--single-transaction", "--skip-triggers", str(src.database)],
        stdout=subprocess.PIPE,
        env=_client_env(src),
    )
    load = subprocess.run(
        [CLIENT, *_client_args(dst), str(dst.database)],
        stdin=dump.stdout,
        capture_output=True,
        env=_client_env(dst),
        check=False,
    )
    assert dump.stdout is not None
    dump.stdout.close()
    if dump.wait() != 0 or load.returncode != 0:
        raise TestBedError(f"copying {src.database} failed: {load.stderr.decode()[-400:]}")


def _client_args(url: sa.URL) -> list[str]:
    return [
        "--no-defaults",
        "-h",
        url.host or "127.0.0.1",
        "-P",
        str(url.port or 3306),
        "-u",
        url.username or "root",
    ]


def _client_env(url: sa.URL) -> dict[str, str]:
    env = dict(os.environ)
    if url.password:
        env["MYSQL_PWD"] = str(url.password)  # not on the command line: ps would show it
    return env


def _terminate(server: Server, timeout: float = 20.0) -> None:
    if server.proc.poll() is None:
        server.proc.send_signal(signal.SIGTERM)
        try:
            server.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            server.proc.kill()
            server.proc.wait()
    with contextlib.suppress(FileNotFoundError):
        server.socket.unlink()


def stop(pair: Pair) -> None:
    """Stop both servers (SIGTERM, wait) and remove their data directories."""
    for server in (pair.replica, pair.primary):
        _terminate(server)
        shutil.rmtree(server.datadir, ignore_errors=True)
