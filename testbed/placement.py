"""The real Placement service of a bed: its gunicorn process and a tiny REST client.

Placement runs from the tool venv as `placement.wsgi.api:application` under
gunicorn, with `[api] auth_strategy = noauth2`: the token `admin` is an admin.
The listening socket is opened here and handed to gunicorn (`--bind fd://N`), so
two beds never race for the same port.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import requests

from testbed import gunicorn
from testbed.errors import TestBedError
from testbed.tools import ensure_bytecode, tool_env

MICROVERSION = "1.39"
TOKEN = "admin"


class PlacementAPI:
    """Just enough of Placement's REST API for seeding, drift and snapshots."""

    def __init__(self, endpoint: str, microversion: str = MICROVERSION) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.session = requests.Session()
        self.session.headers.update(
            {
                "X-Auth-Token": TOKEN,
                "OpenStack-API-Version": f"placement {microversion}",
                "Accept": "application/json",
            }
        )

    def request(self, method: str, path: str, body: Any = None, ok: tuple[int, ...] = ()) -> Any:
        response = self.session.request(method, self.endpoint + path, json=body, timeout=600)
        if response.status_code >= 400 and response.status_code not in ok:
            raise TestBedError(
                f"Placement {method} {path} returned {response.status_code}: {response.text[:2000]}"
            )
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    def get(self, path: str) -> Any:
        return self.request("GET", path)

    def post(self, path: str, body: Any) -> Any:
        return self.request("POST", path, body)

    def put(self, path: str, body: Any) -> Any:
        return self.request("PUT", path, body)

    def delete(self, path: str, ok: tuple[int, ...] = ()) -> Any:
        return self.request("DELETE", path, ok=ok)

    def close(self) -> None:
        self.session.close()


def start(bed_dir: Path, name: str) -> tuple[int, str]:
    """Start Placement for the bed in `bed_dir` (placement.conf there); return (pid, url)."""
    ensure_bytecode()
    log = bed_dir / "placement.log"
    proc, url = gunicorn.serve(
        "placement.wsgi.api:application",
        f"{name}-placement",
        bed_dir,
        tool_env({"OS_PLACEMENT_CONFIG_DIR": str(bed_dir)}),
        log,
        threads=8,
    )
    wait_ready(url, proc, log)
    return proc.pid, url


def wait_ready(
    url: str,
    proc: subprocess.Popen,
    log: Path,
    timeout: float = 120,
    name: str = "Placement",
    ok: tuple[int, ...] = (200,),
) -> None:
    """Wait until the service at `url` answers its root with one of `ok`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise TestBedError(
                f"{name} exited with {proc.returncode} before answering; {log}:\n{_tail(log)}"
            )
        try:
            response = requests.get(url + "/", timeout=2)
            if response.status_code in ok:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    stop(proc.pid, "")
    raise TestBedError(f"{name} did not answer at {url} within {timeout:.0f}s:\n{_tail(log)}")


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def is_ours(pid: int, marker: str) -> bool:
    """True if `pid` is still the gunicorn we started (its command line names the bed)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return False
    return "gunicorn" in cmdline and marker in cmdline


def find(marker: str) -> list[int]:
    """Master gunicorn processes whose command line names the bed `marker`."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit() and is_ours(int(proc.name), marker):
            try:
                if os.getpgid(int(proc.name)) == int(proc.name):
                    found.append(int(proc.name))
            except ProcessLookupError:
                continue
    return found


def stop(pid: int | None, marker: str) -> bool:
    """Stop the Placement server `pid` (its whole process group); True if it was running.

    A test bed's Placement holds nothing worth a graceful shutdown (gunicorn's takes
    ~2.5 s): SIGINT, then SIGKILL for whatever is left after half a second.
    """
    if not pid or (marker and not is_ours(pid, marker)):
        return False
    try:
        os.killpg(pid, signal.SIGINT)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + 0.5
    while time.monotonic() < deadline and _running(pid):
        time.sleep(0.02)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)  # the worker, or both if the master hung
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and _running(pid):
        time.sleep(0.02)
    return True


def _running(pid: int) -> bool:
    """Alive and not a zombie (whoever started it may be gone and not reap it)."""
    _reap(pid)
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
