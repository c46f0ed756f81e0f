"""The test bed's WSGI services (Placement, nova-api, cinder-api) under gunicorn.

The listening socket is opened here on a free loopback port and handed to
gunicorn (`--bind fd://N`), so two beds never race for the same port. Each
service gets its own process group, which `placement.stop` kills as a whole.
"""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Mapping
from pathlib import Path

from testbed.tools import tool


def spawn(
    argv: list[str], env: Mapping[str, str], log: Path, pass_fds: tuple[int, ...] = ()
) -> subprocess.Popen:
    """Start a tool process in its own session, output appended to `log`."""
    with open(log, "ab") as out:
        return subprocess.Popen(
            argv,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            pass_fds=pass_fds,
            start_new_session=True,
        )


def serve(
    app: str, name: str, chdir: Path, env: Mapping[str, str], log: Path, threads: int = 4
) -> tuple[subprocess.Popen, str]:
    """Serve the WSGI `app` (module:attribute) on loopback; return (process, root URL)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    port = sock.getsockname()[1]
    argv = [
        tool("gunicorn"),
        "--bind", f"fd://{sock.fileno()}",
        "--workers", "1",
        "--worker-class", "gthread",
        "--threads", str(threads),
        "--timeout", "900",
        "--graceful-timeout", "5",
        "--name", name,
        "--chdir", str(chdir),
        app,
    ]  # fmt: skip
    try:
        proc = spawn(argv, env, log, pass_fds=(sock.fileno(),))
    finally:
        sock.close()
    return proc, f"http://127.0.0.1:{port}"
