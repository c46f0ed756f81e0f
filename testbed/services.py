"""The API services `python -m testbed up --with-apis` runs beside a bed, and `down` stops.

The real nova-api (host_fault's `[nova]`) and Cinder (cinder-api and
cinder-volume, seeded with the bed's volume attachments; volume_attachments'
`[cinder]`), started as the tests and `make demo` start them. Their processes
are recorded in the bed's testbed.json, so `down` from another process stops
them, and their sections are written into the bed's nova-audit.conf, so every
task runs from the CLI with that one file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from testbed import cinder as cinder_bed
from testbed import nova_api, placement
from testbed.configs import config_with
from testbed.state import TestBed


def nova_record(nova: nova_api.NovaAPI) -> dict[str, Any]:
    """What `stop_recorded` needs to stop this nova-api from another process."""
    return {"pid": nova.pid, "url": nova.url, "marker": nova.marker}


def cinder_record(cinder: cinder_bed.Cinder) -> dict[str, Any]:
    """What `stop_recorded` needs to stop these Cinder processes from another process."""
    return {
        "api_pid": cinder.api_pid,
        "volume_pid": cinder.volume_pid,
        "url": cinder.url,
        "marker": cinder.marker,
        "conf": str(cinder.dir / "cinder.conf"),
    }


def start(bed: TestBed) -> list[str]:
    """Start nova-api and Cinder for `bed`, record them, write their config sections."""
    nova = nova_api.start(bed)
    try:
        cinder = cinder_bed.start(bed)
    except BaseException:
        nova_api.stop(nova)
        raise
    bed.services = {"nova_api": nova_record(nova), "cinder": cinder_record(cinder)}
    bed.save()
    try:
        attachments = cinder_bed.seed(bed, cinder)
        config_with(
            bed,
            bed.config_path.parent,
            nova=nova_api.config_section(nova),
            cinder=cinder_bed.config_section(cinder),
        )
    except BaseException:
        stop(bed)
        raise
    return [
        f"nova-api: {nova.url} (pid {nova.pid})",
        f"cinder: {cinder.url} (api pid {cinder.api_pid}, volume pid {cinder.volume_pid}, "
        f"{attachments} attachments seeded)",
    ]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def stop_recorded(records: dict[str, Any]) -> list[str]:
    """Stop the nova-api and Cinder of `records` (keys nova_api, cinder); only processes
    that are still ours, so a recycled pid is spared."""
    stopped = []
    nova: dict[str, Any] = records.get("nova_api") or {}
    if nova and placement.stop(nova["pid"], nova["marker"]):
        stopped.append(f"nova-api pid {nova['pid']}")
    cinder: dict[str, Any] = records.get("cinder") or {}
    if cinder and placement.stop(cinder["api_pid"], cinder["marker"]):
        stopped.append(f"cinder-api pid {cinder['api_pid']}")
    # cinder-volume is no gunicorn: it is ours if its command line names the bed's conf.
    pid = cinder.get("volume_pid")
    if pid and cinder["conf"] in _cmdline(pid) and placement.stop(pid, ""):
        stopped.append(f"cinder-volume pid {pid}")
    return stopped


def stop(bed: TestBed) -> list[str]:
    """Stop the services `start` recorded for the bed."""
    stopped = stop_recorded(bed.services)
    if bed.services:
        bed.services = {}
        bed.save()
    return stopped
