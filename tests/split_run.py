"""`make test`: the suite as two pytest processes side by side, one exit code.

Most of the suite's wall time is waiting — Airflow processes starting, real
services answering, lock waits the fault tests make on purpose — so on a
2-core machine two halves run in about 60 % of the time of one. Each half is a
full pytest session with its own test bed template and Airflow home (beds,
databases, Cinder exchanges and Airflow's PostgreSQL databases are named per
directory, so the halves never share state). Each half's output is printed
whole when it ends; the exit code is the first non-zero one.

    python -m tests.split_run [pytest args]     # both halves
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# The Airflow-process-heavy tests and four of the ten kill-point cases (each ~50 s of
# forked CLI runs), against everything else: from the measured durations, about 21 and
# 22 minutes (24 and 18.5 with all ten kill cases in the first half).
KILL_CASES = (
    "test_kill_at_any_point and (archive_deleted_rows or heal_allocations or "
    "volume_attachments or host_fault)"
)
FIRST = [
    "tests/dags",
    "tests/tasks/test_kill_points.py",
    "-k",
    f"not test_kill_at_any_point or ({KILL_CASES})",
]
REST = ["--ignore=tests/dags", "-k", f"not ({KILL_CASES})"]


def main(argv: list[str]) -> int:
    halves = {"airflow + some kill points": FIRST, "everything else": REST}
    started = time.monotonic()
    running = []
    for name, selection in halves.items():
        log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - read and closed below
        command = [sys.executable, "-m", "pytest", *selection, *argv]
        proc = subprocess.Popen(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
        running.append((name, command, proc, log))
    code = 0
    for name, command, proc, log in running:
        result = proc.wait()
        log.seek(0)
        print(f"\n===== {name}: {' '.join(command[2:])} (exit {result}) =====", flush=True)
        sys.stdout.write(log.read())
        log.close()
        code = code or result
    print(f"\n===== both halves done in {time.monotonic() - started:.0f} s, exit {code} =====")
    return code


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
