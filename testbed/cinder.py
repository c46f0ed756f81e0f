"""The real Cinder of a bed: cinder-api, and cinder-volume with Cinder's own fake driver.

cinder-api runs from the tool venv under gunicorn with `auth_strategy = noauth`
(the token `user:project` is an admin); cinder-volume runs the
`FakeLoggingVolumeDriver` shipped in `cinder.tests`, so attachment deletes go
through Cinder's real RPC path (API → cinder-volume → terminate connection).
RPC needs a broker: RabbitMQ at `NOVA_AUDIT_TESTBED_RABBIT` (default
rabbit://guest:guest@127.0.0.1:5672/), each bed on its own control exchange.
Cinder's database is SQLite in the bed's directory, built by `cinder-manage db
sync` once per machine and copied.

`seed()` gives every volume-backed instance of the Nova bed its volume and
attachment in Cinder, as Nova's attach flow leaves them. Keystone does not run
here, so the seeded attachments hold no `connection_info`: Cinder only asks
Nova whether an in-use attachment may go when it has one (bug #2004555).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
import sqlalchemy as sa

from testbed import gunicorn, placement
from testbed.backends import state_dir
from testbed.db import connect
from testbed.drift import round_robin
from testbed.errors import TestBedError
from testbed.state import TestBed
from testbed.tools import TOOL_SCRIPTS, tool, tool_env, tools_venv

RABBIT_ENV = "NOVA_AUDIT_TESTBED_RABBIT"
DEFAULT_RABBIT = "rabbit://guest:guest@127.0.0.1:5672/"
TOKEN = "admin:admin"
MICROVERSION = "3.44"


@dataclass(frozen=True)
class Cinder:
    """A running Cinder: its processes, its endpoint and its database file."""

    dir: Path
    api_pid: int
    volume_pid: int
    url: str  # the v3 endpoint
    db_path: Path
    marker: str

    @property
    def volume_host(self) -> str:
        return f"{self.marker}@fake#fake"

    @property
    def db_url(self) -> str:
        return f"sqlite:///{self.db_path}"


def _rabbit() -> str:
    url = os.environ.get(RABBIT_ENV) or DEFAULT_RABBIT
    host_port = url.split("@")[-1].split("/")[0]
    host, _, port = host_port.partition(":")
    try:
        socket.create_connection((host or "127.0.0.1", int(port or 5672)), timeout=3).close()
    except OSError as exc:
        raise TestBedError(
            f"cinder-volume needs RabbitMQ for RPC and {host_port} does not answer ({exc}): "
            f"start rabbitmq-server, or set {RABBIT_ENV}"
        ) from None
    return url


def _conf(directory: Path, marker: str, db_path: Path) -> str:
    return (
        "[DEFAULT]\n"
        "auth_strategy = noauth\n"
        f"transport_url = {_rabbit()}\n"
        f"control_exchange = {marker}\n"
        f"host = {marker}\n"
        "enabled_backends = fake\n"
        f"state_path = {directory / 'state'}\n"
        f"api_paste_config = {tools_venv() / 'etc' / 'cinder' / 'api-paste.ini'}\n"
        "debug = false\n"
        "rpc_response_timeout = 30\n"
        "\n[database]\n"
        f"connection = sqlite:///{db_path}\n"
        "\n[oslo_concurrency]\n"
        f"lock_path = {directory / 'locks'}\n"
        "\n[fake]\n"
        "volume_driver = cinder.tests.fake_driver.FakeLoggingVolumeDriver\n"
        "volume_backend_name = fake\n"
    )


def _template_db(conf: Path) -> Path:
    """Cinder's schema, synced once per machine and Cinder version."""
    version = (tools_venv() / "lib").glob("python*/site-packages/cinder-*.dist-info")
    tag = next(iter(sorted(p.name for p in version)), "cinder")
    template = state_dir() / f"{tag}.sqlite"
    if template.exists():
        return template
    template.parent.mkdir(parents=True, exist_ok=True)
    scratch = conf.parent / "template.sqlite"
    text = conf.read_text().replace(str(conf.parent / "cinder.sqlite"), str(scratch))
    sync_conf = conf.parent / "sync.conf"
    sync_conf.write_text(text)
    result = subprocess.run(
        [tool("cinder-manage"), "--config-file", str(sync_conf), "db", "sync"],
        env=tool_env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if result.returncode != 0:
        raise TestBedError(f"cinder-manage db sync failed:\n{result.stderr[-3000:]}")
    shutil.move(str(scratch), template)
    return template


def start(bed: TestBed) -> Cinder:
    """Start cinder-api and cinder-volume for `bed`; stop them with `stop()`."""
    directory = Path(bed.dir) / "cinder"
    shutil.rmtree(directory, ignore_errors=True)
    (directory / "state").mkdir(parents=True)
    marker = f"{bed.prefix}-cinder"
    db_path = directory / "cinder.sqlite"
    conf = directory / "cinder.conf"
    conf.write_text(_conf(directory, marker, db_path))
    shutil.copy(_template_db(conf), db_path)
    env = tool_env({"CINDER_CONFIG_FILE": str(conf), "PYTHONPATH": str(TOOL_SCRIPTS)})
    volume = gunicorn.spawn(
        [tool("cinder-volume"), "--config-file", str(conf)], env, directory / "volume.log"
    )
    api, root = gunicorn.serve(
        "cinder_api_wsgi:application", marker, directory, env, directory / "api.log"
    )
    cinder = Cinder(directory, api.pid, volume.pid, root + "/v3", db_path, marker)
    try:
        # cinder-api answers its root with 300 Multiple Choices (the version list).
        placement.wait_ready(root, api, directory / "api.log", name="cinder-api", ok=(200, 300))
        _wait_volume_service(cinder, volume)
    except BaseException:
        stop(cinder)
        raise
    return cinder


def _wait_volume_service(cinder: Cinder, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log = (cinder.dir / "volume.log").read_text(errors="replace")[-3000:]
            raise TestBedError(f"cinder-volume exited with {proc.returncode}:\n{log}")
        services = get(cinder, "/os-services?binary=cinder-volume")["services"]
        if any(s["state"] == "up" for s in services):
            return
        time.sleep(0.3)
    raise TestBedError(f"cinder-volume did not report in within {timeout:.0f}s")


def stop(cinder: Cinder) -> None:
    for pid in (cinder.api_pid, cinder.volume_pid):
        placement.stop(pid, "")


def _headers() -> dict[str, str]:
    return {"X-Auth-Token": TOKEN, "OpenStack-API-Version": f"volume {MICROVERSION}"}


def get(cinder: Cinder, path: str) -> dict[str, Any]:
    response = requests.get(cinder.url + path, headers=_headers(), timeout=30)
    response.raise_for_status()
    return dict(response.json())


def attachments(cinder: Cinder) -> dict[str, dict[str, Any]]:
    """Every attachment Cinder lists, by id."""
    found = get(cinder, "/attachments/detail?all_tenants=1")["attachments"]
    return {a["id"]: a for a in found}


def config_section(cinder: Cinder) -> dict[str, str]:
    """The nova-audit `[cinder]` section that reaches this Cinder."""
    return {"auth_type": "admin_token", "endpoint": cinder.url, "token": TOKEN}


# --------------------------------------------------------------------------- rows


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None, microsecond=0)


def add_volume(
    cinder: Cinder,
    volume_id: str,
    project_id: str,
    user_id: str,
    size: int,
    attachments_of: list[tuple[str, str, str]],
) -> None:
    """A volume, and one attachment per (attachment id, instance uuid, status)."""
    with connect(cinder.db_url) as conn:
        volume_type = conn.execute(sa.text("SELECT id FROM volume_types LIMIT 1")).scalar_one()
        now = _now()
        attached = any(status == "attached" for _, _, status in attachments_of)
        status = "in-use" if attached else "reserved" if attachments_of else "available"
        conn.execute(
            sa.text(
                "INSERT INTO volumes (created_at, deleted, id, user_id, project_id, host, size, "
                "availability_zone, status, attach_status, volume_type_id, use_quota, bootable, "
                "multiattach, display_name) VALUES (:now, 0, :id, :user, :project, :host, "
                ":size, 'nova', :status, :attach, :type, 1, 1, 0, :name)"
            ),
            {
                "now": now,
                "id": volume_id,
                "user": user_id,
                "project": project_id,
                "host": cinder.volume_host,
                "size": size,
                "status": status,
                "attach": "attached" if attached else "detached",
                "type": volume_type,
                "name": f"vol-{volume_id[:8]}",
            },
        )
        for attachment_id, instance_uuid, attach_status in attachments_of:
            conn.execute(
                sa.text(
                    "INSERT INTO volume_attachment (created_at, deleted, id, volume_id, "
                    "attached_host, instance_uuid, mountpoint, attach_time, attach_mode, "
                    "attach_status, connector) VALUES (:now, 0, :id, :volume, :host, :instance, "
                    "'/dev/vda', :attach_time, 'rw', :status, :connector)"
                ),
                {
                    "now": now,
                    "id": attachment_id,
                    "volume": volume_id,
                    "host": "compute" if attach_status == "attached" else None,
                    "instance": instance_uuid,
                    "attach_time": now if attach_status == "attached" else None,
                    "status": attach_status,
                    "connector": json.dumps({"host": "compute", "initiator": "iqn.testbed"})
                    if attach_status == "attached"
                    else None,
                },
            )


def seed(bed: TestBed, cinder: Cinder) -> int:
    """Volumes and attachments for every live volume BDM of the bed's instances."""
    count = 0
    for cell in bed.cells:
        with connect(cell.url) as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT b.volume_id, b.attachment_id, b.volume_size, i.uuid, i.project_id, "
                    "i.user_id FROM block_device_mapping b JOIN instances i "
                    "ON i.uuid = b.instance_uuid WHERE b.deleted = 0 AND i.deleted = 0 "
                    "AND b.destination_type = 'volume' AND b.attachment_id IS NOT NULL"
                )
            ).all()
        for row in rows:
            add_volume(
                cinder,
                row.volume_id,
                row.project_id,
                row.user_id,
                int(row.volume_size or 1),
                [(row.attachment_id, row.uuid, "attached")],
            )
            count += 1
    return count


# --------------------------------------------------------------------------- drift


def _volume_backed(bed: TestBed, count: int) -> list[tuple[Any, Any]]:
    """Up to `count` (cell, row) of live volume-backed instances, round-robin over cells."""
    groups = []
    for cell in bed.compute_cells:
        with connect(cell.url) as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT i.id, i.uuid, b.volume_id, b.attachment_id, i.project_id, i.user_id "
                    "FROM instances i JOIN block_device_mapping b ON b.instance_uuid = i.uuid "
                    "WHERE i.deleted = 0 AND b.deleted = 0 AND b.destination_type = 'volume' "
                    "AND b.attachment_id IS NOT NULL ORDER BY i.id"
                )
            ).all()
        groups.append([(cell, r) for r in rows])
    return round_robin(groups, count)


def deleted_servers(bed: TestBed, cinder: Cinder, count: int) -> list[dict[str, Any]]:
    """Volume-backed servers deleted in Nova while their Cinder attachment stayed."""
    picked = _volume_backed(bed, count)
    for cell, row in picked:
        with connect(cell.url) as conn:
            conn.execute(
                sa.text(
                    "UPDATE instances SET deleted = id, deleted_at = :now, vm_state = 'deleted', "
                    "task_state = NULL WHERE id = :id"
                ),
                {"now": _now(), "id": row.id},
            )
            conn.execute(
                sa.text(
                    "UPDATE block_device_mapping SET deleted = id, deleted_at = :now "
                    "WHERE instance_uuid = :u"
                ),
                {"now": _now(), "u": row.uuid},
            )
    return [{"cell": c.name, "server": r.uuid, "attachment_id": r.attachment_id} for c, r in picked]


def unknown_servers(bed: TestBed, cinder: Cinder, count: int) -> list[dict[str, Any]]:
    """Reserved attachments for servers Nova never had (a boot that failed early)."""
    import uuid as uuidlib

    changes = []
    for index in range(count):
        server, volume, attachment = (str(uuidlib.uuid4()) for _ in range(3))
        add_volume(cinder, volume, "p-gone", "u-gone", 1, [(attachment, server, "reserved")])
        changes.append({"server": server, "attachment_id": attachment, "index": index})
    return changes


def stale_attachments(bed: TestBed, cinder: Cinder, count: int) -> list[dict[str, Any]]:
    """A second attachment of a live server's volume that Nova does not use."""
    import uuid as uuidlib

    changes = []
    with connect(cinder.db_url) as conn:
        for cell, row in _volume_backed(bed, count):
            stale = str(uuidlib.uuid4())
            conn.execute(
                sa.text(
                    "INSERT INTO volume_attachment (created_at, deleted, id, volume_id, "
                    "instance_uuid, attach_mode, attach_status) VALUES "
                    "(:now, 0, :id, :volume, :server, 'rw', 'reserved')"
                ),
                {"now": _now(), "id": stale, "volume": row.volume_id, "server": row.uuid},
            )
            changes.append({"cell": cell.name, "server": row.uuid, "attachment_id": stale})
    return changes


def lost_attachments(bed: TestBed, cinder: Cinder, count: int) -> list[dict[str, Any]]:
    """Attachments Cinder lost while Nova's BDM still names them."""
    picked = _volume_backed(bed, count)
    with connect(cinder.db_url) as conn:
        for _, row in picked:
            conn.execute(
                sa.text(
                    "UPDATE volume_attachment SET deleted = 1, deleted_at = :now, "
                    "attach_status = 'detached' WHERE id = :id"
                ),
                {"now": _now(), "id": row.attachment_id},
            )
    return [{"cell": c.name, "server": r.uuid, "attachment_id": r.attachment_id} for c, r in picked]
