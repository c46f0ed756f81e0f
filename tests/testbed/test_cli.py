"""`python -m testbed` end to end on SQLite (what `make demo` uses)."""

from __future__ import annotations

import configparser
import json
import os
import subprocess
import sys
from pathlib import Path

import testbed
from tests import support
from tests.testbed.util import host_mappings

REPO = Path(__file__).resolve().parents[2]


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "testbed", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=600,
        check=False,
    )


def test_sqlite_bed_through_the_cli(tmp_path: Path) -> None:
    directory = tmp_path / "bed"
    try:
        up = cli(
            "up",
            "--backend",
            "sqlite",
            "--dir",
            str(directory),
            "--cells",
            "1",
            "--hosts-per-cell",
            "2",
            "--instances-per-cell",
            "5",
        )
        assert up.returncode == 0, up.stdout + up.stderr
        config = Path(up.stdout.strip().splitlines()[-1])
        assert config == directory.resolve() / "nova-audit.conf" and config.exists()
        assert "connection = sqlite:////" in config.read_text()
        bed = testbed.load(directory)
        assert [c.name for c in bed.cells] == ["cell0", "cell1"]
        assert (directory / "nova_cell1.sqlite").exists()

        drift = cli("drift", "unmapped_hosts", "--dir", str(directory), "--count", "1", "--json")
        assert drift.returncode == 0, drift.stderr
        (change,) = json.loads(drift.stdout)
        assert change["host"] not in {h for _, h in host_mappings(bed)}
        lines = cli("drift", "new_hosts", "--dir", str(directory), "--count", "2")
        assert lines.returncode == 0, lines.stderr
        assert [line.split()[:2] for line in lines.stdout.splitlines()] == [
            ["new_hosts", "cell=cell1"],
            ["new_hosts", "cell=cell1"],
        ]

        discovered = cli(
            "nova-manage", "--dir", str(directory), "cell_v2", "discover_hosts", "--verbose"
        )
        assert discovered.returncode == 0, discovered.stdout + discovered.stderr
        assert discovered.stdout.count("Creating host mapping") == 3
        strict = cli(
            "nova-manage", "--dir", str(directory), "cell_v2", "discover_hosts", "--strict"
        )
        assert strict.returncode == 1, "exit codes pass through"

        silent = cli("drift", "silent_hosts", "--dir", str(directory), "--count", "1", "--json")
        assert silent.returncode == 0, silent.stderr
        assert testbed.heartbeat(bed) == 3, "every compute but the silenced one reports in"
    finally:
        down = cli("down", "--dir", str(directory))
    assert down.returncode == 0, down.stderr
    assert not directory.exists()


def test_cli_errors_are_short_and_clear(tmp_path: Path) -> None:
    result = cli("drift", "unmapped_hosts", "--dir", str(tmp_path / "nothing"), "--count", "1")
    assert result.returncode == 2
    assert "run `up` first" in result.stderr and "Traceback" not in result.stderr


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"  # a zombie has exited


def test_with_apis_runs_every_service_a_task_needs(tmp_path: Path) -> None:
    """`up --with-apis`: host_fault and volume_attachments run from the CLI alone."""
    directory = tmp_path / "bed"
    pids: list[int] = []
    try:
        up = cli(
            "up", "--backend", "sqlite", "--dir", str(directory), "--cells", "1",
            "--hosts-per-cell", "2", "--instances-per-cell", "6", "--with-apis",
        )  # fmt: skip
        assert up.returncode == 0, up.stdout + up.stderr
        assert "nova-api: http://127.0.0.1:" in up.stdout and "attachments seeded" in up.stdout
        config = up.stdout.strip().splitlines()[-1]
        parser = configparser.ConfigParser(interpolation=None)
        parser.read(config)
        assert parser["nova"]["endpoint"].endswith("/v2.1")
        assert parser["cinder"]["endpoint"].endswith("/v3")
        bed = testbed.load(directory)
        pids = [
            bed.services["nova_api"]["pid"],
            bed.services["cinder"]["api_pid"],
            bed.services["cinder"]["volume_pid"],
        ]
        assert all(_alive(pid) for pid in pids)

        silent = cli("drift", "silent_hosts", "--dir", str(directory), "--count", "1", "--json")
        assert silent.returncode == 0, silent.stderr
        (host,) = [c["host"] for c in json.loads(silent.stdout)]
        testbed.heartbeat(bed)
        healed = support.cli(
            "run", "host_fault", "--config-file", config, "--mode", "heal", "--hosts", host,
            "--instance-state", "stopped", "--json",
        )  # fmt: skip
        assert healed.returncode == 0, healed.stdout + healed.stderr
        report = json.loads(healed.stdout)
        assert {f["status"] for f in report["findings"]} == {"fixed"}
        forced = support.query(
            bed.cell("cell1").url, "SELECT forced_down FROM services WHERE host = :h", h=host
        )
        assert [r.forced_down for r in forced] == [1], "forced down through nova-api"
        attachments = support.cli("run", "volume_attachments", "--config-file", config, "--json")
        assert attachments.returncode == 0, attachments.stdout + attachments.stderr
        assert json.loads(attachments.stdout)["counts"]["examined"] > 0
    finally:
        down = cli("down", "--dir", str(directory))
    assert down.returncode == 0, down.stderr
    assert "removed nova-api pid" in down.stdout and "removed cinder-volume pid" in down.stdout
    assert not [pid for pid in pids if _alive(pid)]
    assert not directory.exists()
