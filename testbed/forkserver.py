"""Client of tool/zygote.py: nova-manage in ~0.5 s instead of ~4.5 s.

One zygote per Python process, started on first use, stopped when the process
exits (its socket closes). `run()` behaves like subprocess.run of the real
console script: same entry point (`nova.cmd.manage:main`), argv, environment and
exit code; only Nova's import happened earlier, in the zygote. Benchmarks must
not use it (they time the real process); `testbed.nova_manage_command` gives the
argv of the real binary for that.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence

from testbed.errors import TestBedError
from testbed.tools import ensure_bytecode, tool, tool_env, tool_python

_lock = threading.Lock()
_zygote: Zygote | None = None


class Zygote:
    """A tool-venv process with Nova imported, forking one child per command."""

    def __init__(self) -> None:
        ensure_bytecode()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.sock = ours
        self.send_lock = threading.Lock()
        self.proc = subprocess.Popen(
            [*tool_python("zygote.py"), str(theirs.fileno())],
            pass_fds=(theirs.fileno(),),
            env=tool_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        theirs.close()
        ours.settimeout(120)
        try:
            ready = ours.recv(16)
        except OSError:
            ready = b""
        ours.settimeout(None)
        if ready != b"ready":
            self.proc.kill()
            _, err = self.proc.communicate()
            raise TestBedError(f"the nova-manage zygote did not start:\n{err.decode()[-3000:]}")
        assert self.proc.stderr is not None
        self.proc.stderr.close()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def run(
        self,
        kind: str,
        argv: Sequence[str],
        env: Mapping[str, str] | None = None,
        timeout: float = 900,
    ) -> subprocess.CompletedProcess[str]:
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        status_r, status_w = os.pipe()
        stdin = os.open(os.devnull, os.O_RDONLY)
        request = {"kind": kind, "argv": list(argv), "cwd": os.getcwd(), "env": dict(env or {})}
        try:
            with self.send_lock:
                socket.send_fds(
                    self.sock, [json.dumps(request).encode()], [stdin, out_w, err_w, status_w]
                )
        finally:
            for fd in (stdin, out_w, err_w, status_w):
                os.close(fd)
        outputs = _read_all({out_r: "out", err_r: "err", status_r: "status"}, timeout)
        status = outputs["status"].split()
        if len(status) < 2:
            if status:
                _kill(int(status[0]))
            raise TestBedError(
                f"{' '.join(argv)} did not finish (timeout {timeout:.0f}s or crash):\n"
                f"{outputs['out'][-2000:]}\n{outputs['err'][-2000:]}"
            )
        return subprocess.CompletedProcess(
            list(argv), int(status[1]), outputs["out"], outputs["err"]
        )


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def _read_all(fds: dict[int, str], timeout: float) -> dict[str, str]:
    chunks: dict[str, list[bytes]] = {name: [] for name in fds.values()}
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        for fd in fds:
            selector.register(fd, selectors.EVENT_READ)
        open_fds = set(fds)
        while open_fds:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            for key, _ in selector.select(timeout=left):
                data = os.read(key.fd, 65536)
                if data:
                    chunks[fds[key.fd]].append(data)
                else:
                    selector.unregister(key.fd)
                    open_fds.discard(key.fd)
    for fd in fds:
        os.close(fd)
    return {name: b"".join(parts).decode(errors="replace") for name, parts in chunks.items()}


def zygote() -> Zygote:
    """The process-wide zygote, (re)started on demand."""
    global _zygote
    with _lock:
        if _zygote is None or not _zygote.alive():
            _zygote = Zygote()
        return _zygote


def nova_manage(
    nova_conf: str | os.PathLike[str], *args: str, timeout: float = 900
) -> subprocess.CompletedProcess[str]:
    """`nova-manage --config-file NOVA_CONF ARGS...`, forked from the warm zygote."""
    argv = [tool("nova-manage"), "--config-file", str(nova_conf), *args]
    return zygote().run("nova-manage", argv, timeout=timeout)


def script(name: str, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    """Run testbed/tool/NAME with Nova already imported."""
    path = tool_python(name)[1]
    return zygote().run("script", [path, *args], timeout=timeout)
