"""Nova's and Placement's own programs, run from the tool virtualenv.

Nova and Placement are never imported by the project: every use of them goes
through a subprocess of `<tools venv>/bin/...`, so the project venv stays free of
Nova's dependency pins. This module finds that venv, makes sure its bytecode is
compiled (importing Nova from source takes about 10 s, from .pyc about 3.5 s),
and runs commands with a clean environment.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from testbed.errors import TestBedError

REPO = Path(__file__).resolve().parents[1]
TOOLS_ENV = "NOVA_AUDIT_TOOLS_VENV"
TOOL_SCRIPTS = Path(__file__).resolve().parent / "tool"


def tools_venv() -> Path:
    """The tool virtualenv (Nova 34, Placement 16), from the env or `<repo>/.tools-venv`."""
    venv = Path(os.environ.get(TOOLS_ENV) or REPO / ".tools-venv")
    if not (venv / "bin" / "nova-manage").exists():
        raise TestBedError(
            f"the tool virtualenv {venv} has no nova-manage: run `make tools` "
            f"(or set {TOOLS_ENV} to a venv with nova and openstack-placement)"
        )
    return venv


def tool(name: str) -> str:
    return str(tools_venv() / "bin" / name)


def tool_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for tool processes: no project venv leaking in, fixed hash seed.

    PYTHONHASHSEED makes Nova's serializations (set-ordered `nova_object.changes`)
    the same on every run, so seeding is deterministic.
    """
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env["PYTHONHASHSEED"] = "0"
    env["PYTHONWARNINGS"] = "ignore"
    venv_bin = str(tools_venv() / "bin")
    env["PATH"] = venv_bin + os.pathsep + env.get("PATH", "")
    env.update(extra or {})
    return env


def ensure_bytecode() -> None:
    """Compile the tool venv once: every nova-manage call then starts 3x faster.

    The environment sets PYTHONDONTWRITEBYTECODE, so without this each call
    recompiles all of Nova.
    """
    venv = tools_venv()
    stamp = venv / ".testbed-compiled"
    if stamp.exists():
        return
    site = next((venv / "lib").glob("python3*/site-packages"))
    env = tool_env()
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    subprocess.run(
        [str(venv / "bin" / "python"), "-m", "compileall", "-q", "-j0", str(site)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
    )
    stamp.touch()


def run_tool(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    input_text: str | None = None,
    check: bool = True,
    timeout: float = 900,
) -> subprocess.CompletedProcess[str]:
    """Run one tool-venv program to completion; on failure raise with its output."""
    ensure_bytecode()
    result = subprocess.run(
        list(argv),
        env=tool_env(env),
        input=input_text,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and result.returncode != 0:
        raise TestBedError(
            f"{' '.join(Path(a).name if i == 0 else a for i, a in enumerate(argv))} "
            f"exited {result.returncode}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    return result


def tool_python(script: str) -> list[str]:
    """argv to run one of testbed/tool/*.py with the tool venv's Python."""
    return [tool("python"), str(TOOL_SCRIPTS / script)]


def nova_manage_argv(nova_conf: str | os.PathLike[str], *args: str) -> list[str]:
    return [tool("nova-manage"), "--config-file", str(nova_conf), *args]
