"""A warm nova-manage: import Nova once, fork once per command (tool venv only).

`nova-manage` spends ~3.5 s of CPU importing Nova before doing anything. This
process imports `nova.cmd.manage` once and then, for each request on its socket,
forks a child that runs exactly what the `nova-manage` console script runs
(`sys.exit(nova.cmd.manage:main())`) with the requested argv, cwd, environment
and stdin/stdout/stderr (passed as file descriptors). Each child writes its pid
and then its exit code to a status descriptor. Scripts (testbed/tool/*.py) can
run the same way, with Nova already imported.

Protocol (SOCK_SEQPACKET, one message per command): JSON {"kind": "nova-manage" |
"script", "argv": [...], "cwd": str, "env": {...}} with four descriptors: stdin,
stdout, stderr, status. The zygote exits when its socket's other end closes.
Usage: python zygote.py FD. This file must not import anything from the project.
"""

from __future__ import annotations

import atexit
import json
import os
import runpy
import signal
import socket
import sys
import traceback
from typing import Any


def child(request: dict[str, Any], fds: list[int]) -> None:
    """Become the command: never returns."""
    code: Any = 255
    status = fds[3]
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        for target, fd in enumerate(fds[:3]):
            os.dup2(fd, target)
        for fd in fds[:3]:
            if fd > 2:
                os.close(fd)
        os.write(status, f"{os.getpid()}\n".encode())
        os.chdir(request.get("cwd") or "/")
        os.environ.update(request.get("env") or {})
        sys.argv = list(request["argv"])
        try:
            if request["kind"] == "nova-manage":
                from nova.cmd.manage import main

                code = main()
            else:
                runpy.run_path(sys.argv[0], run_name="__main__")
                code = 0
        except SystemExit as exc:
            code = exc.code
        if code is None:
            code = 0
        elif not isinstance(code, int):
            print(code, file=sys.stderr)
            code = 1
    except BaseException:
        traceback.print_exc()
        code = 255
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
            atexit._run_exitfuncs()
        finally:
            os.write(status, f"{code}\n".encode())
            os._exit(int(code) & 0xFF)


def serve(sock: socket.socket) -> None:
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
    sock.send(b"ready")
    while True:
        try:
            message, fds, _, _ = socket.recv_fds(sock, 1 << 20, 4)
        except (OSError, EOFError):
            return
        if not message:
            return
        if os.fork() == 0:
            sock.close()
            child(json.loads(message), list(fds))
        for fd in fds:
            os.close(fd)


def main() -> int:
    sock = socket.socket(fileno=int(sys.argv[1]))
    import nova.cmd.manage  # noqa: F401 - the point: import once, before any fork

    serve(sock)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
