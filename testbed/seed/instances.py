"""Rows Nova writes for an instance, in the cell database, table by table.

An instance brings instance_extra, its info cache, system metadata, metadata,
block device mappings, an EC2 id mapping, a fault if it never got a host, and
its actions with their events. Soft-deleted instances take their children with
them, the way `instance_destroy` leaves them; actions are never soft-deleted.
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from testbed.seed.block_devices import block_devices
from testbed.seed.model import BFV, IMAGES, Host, Instance, new_uuid

Shapes = dict[str, dict[str, Any]]


class Ids:
    """Explicit primary keys per table, so child rows can name their parents."""

    def __init__(self, start: dict[str, int] | None = None) -> None:
        self.next: dict[str, int] = defaultdict(lambda: 1, start or {})

    def take(self, table: str) -> int:
        """The next key of `table`."""
        value = self.next[table]
        self.next[table] = value + 1
        return value


class CellRows:
    """All rows of one chunk of instances, table by table, in insert order."""

    TABLES = (
        "instances",
        "instance_extra",
        "instance_info_caches",
        "instance_system_metadata",
        "instance_metadata",
        "block_device_mapping",
        "instance_id_mappings",
        "instance_faults",
        "instance_actions",
        "instance_actions_events",
    )

    def __init__(self) -> None:
        self.rows: dict[str, list[dict[str, Any]]] = {t: [] for t in self.TABLES}

    def add(self, table: str, row: dict[str, Any], deleted_at: dt.datetime | None) -> None:
        """Add a child row; soft-deleted rows get deleted = their own id, as oslo.db does."""
        row["deleted"] = row["id"] if deleted_at else 0
        row["deleted_at"] = deleted_at
        self.rows[table].append(row)


def instance_rows(
    chunk: Sequence[Instance],
    shapes: Shapes,
    flavor_ids: dict[str, int],
    ids: Ids,
    rng: random.Random,
) -> CellRows:
    """Every row of every instance of `chunk`."""
    out = CellRows()
    for inst in chunk:
        shape = shapes[inst.shape]
        gone = inst.deleted_at
        out.add("instances", instance_row(inst, flavor_ids), gone)
        out.add("instance_extra", extra_row(inst, shape, ids), gone)
        out.add("instance_info_caches", info_cache_row(inst, shape, ids), gone)
        for key, value in shape["system_metadata"].items():
            out.add("instance_system_metadata", metadata_row(inst, key, value, ids, "system"), gone)
        if inst.index % 3 == 0:
            purpose = rng.choice(["web", "db", "batch"])
            out.add("instance_metadata", metadata_row(inst, "purpose", purpose, ids), gone)
        for bdm in block_devices(inst, rng):
            bdm["id"] = ids.take("block_device_mapping")
            out.add("block_device_mapping", bdm, gone)
        out.add("instance_id_mappings", id_mapping_row(inst, ids), gone)
        if inst.host is None:
            out.add("instance_faults", no_valid_host_fault(inst, ids), None)
        add_actions(out, inst, ids, rng)
    return out


def launched_at(inst: Instance) -> dt.datetime | None:
    """When the instance went active: 40 s after creation, if it ever got a host."""
    return inst.created_at + dt.timedelta(seconds=40) if inst.host else None


def instance_row(inst: Instance, flavor_ids: dict[str, int]) -> dict[str, Any]:
    """The `instances` row: active on its host, in error without one, or deleted."""
    f = inst.flavor
    host = inst.host
    gone = inst.deleted_at
    launched = launched_at(inst)
    in_error = host is None
    return {
        "id": inst.id,
        "uuid": inst.uuid,
        "created_at": inst.created_at,
        "updated_at": gone or launched or inst.created_at,
        "user_id": inst.user_id,
        "project_id": inst.project_id,
        "image_ref": "" if inst.image == BFV else dict(IMAGES)[inst.image],
        "kernel_id": "",
        "ramdisk_id": "",
        "launch_index": 0,
        "key_name": None,
        "key_data": None,
        "power_state": 0 if (gone or in_error) else 1,
        "vm_state": "deleted" if gone else ("error" if in_error else "active"),
        "task_state": None,
        "memory_mb": f.memory_mb,
        "vcpus": f.vcpus,
        "root_gb": f.root_gb,
        "ephemeral_gb": f.ephemeral_gb,
        "hostname": f"vm-{inst.cell}-{inst.index:06d}",
        "display_name": f"vm-{inst.cell}-{inst.index:06d}",
        "display_description": None,
        **placement_columns(inst, host),
        "user_data": None,
        "reservation_id": f"r-{uuid.UUID(inst.uuid).hex[:8]}",
        "launched_at": launched,
        "terminated_at": gone,
        "availability_zone": f"az-{inst.cell}" if host else None,
        **unset_instance_columns(),
        "instance_type_id": flavor_ids[f.flavorid],
        "root_device_name": "/dev/vda",
        "default_ephemeral_device": "/dev/vdb" if f.ephemeral_gb else None,
        "default_swap_device": "/dev/vdc" if f.swap else None,
        "config_drive": "",
        "progress": 0,
        "auto_disk_config": False,
        "shutdown_terminate": False,
        "disable_terminate": False,
        "cell_name": None,
        "cleaned": 1 if gone else 0,
        "ephemeral_key_uuid": None,
        "hidden": False,
        "access_ip_v4": None,
        "access_ip_v6": None,
    }


def placement_columns(inst: Instance, host: Host | None) -> dict[str, Any]:
    """Where the instance runs: host, node, compute node id and where it was launched."""
    return {
        "host": host.name if host else None,
        "node": host.name if host else None,
        "compute_id": host.node_id if host else None,
        "launched_on": host.name if host else None,
    }


def unset_instance_columns() -> dict[str, Any]:
    """Lock, OS and architecture columns the seed never sets."""
    return {
        "locked": False,
        "locked_by": None,
        "os_type": None,
        "architecture": None,
        "vm_mode": None,
    }


def extra_row(inst: Instance, shape: dict[str, Any], ids: Ids) -> dict[str, Any]:
    """instance_extra: the shape's NUMA topology, PCI requests, flavor and keypairs."""
    extra = shape["instance_extra"]
    return {
        "id": ids.take("instance_extra"),
        "instance_uuid": inst.uuid,
        "created_at": inst.created_at,
        "updated_at": launched_at(inst),
        "numa_topology": extra["numa_topology"],
        "pci_requests": extra["pci_requests"],
        "flavor": extra["flavor"],
        "vcpu_model": None,
        "migration_context": None,
        "keypairs": extra["keypairs"],
        "device_metadata": None,
        "trusted_certs": None,
        "vpmems": None,
        "resources": None,
    }


def info_cache_row(inst: Instance, shape: dict[str, Any], ids: Ids) -> dict[str, Any]:
    """The network info cache of the instance's shape."""
    return {
        "id": ids.take("instance_info_caches"),
        "instance_uuid": inst.uuid,
        "network_info": shape["network_info"],
        "created_at": inst.created_at,
        "updated_at": launched_at(inst),
    }


def metadata_row(
    inst: Instance, key: str, value: str, ids: Ids, kind: str = "user"
) -> dict[str, Any]:
    """One instance_metadata row, or instance_system_metadata for kind "system"."""
    table = "instance_system_metadata" if kind == "system" else "instance_metadata"
    return {
        "id": ids.take(table),
        "instance_uuid": inst.uuid,
        "key": key,
        "value": value,
        "created_at": inst.created_at,
        "updated_at": None,
    }


def id_mapping_row(inst: Instance, ids: Ids) -> dict[str, Any]:
    """The instance's EC2 id mapping."""
    return {
        "id": ids.take("instance_id_mappings"),
        "uuid": inst.uuid,
        "created_at": inst.created_at,
        "updated_at": None,
    }


def no_valid_host_fault(inst: Instance, ids: Ids) -> dict[str, Any]:
    """The fault of an instance the scheduler found no host for."""
    return {
        "id": ids.take("instance_faults"),
        "instance_uuid": inst.uuid,
        "code": 500,
        "message": "No valid host was found. ",
        "details": "",
        "host": None,
        "created_at": inst.created_at,
        "updated_at": None,
    }


def add_actions(out: CellRows, inst: Instance, ids: Ids, rng: random.Random) -> None:
    """`create` (and `delete`) actions with their events; never soft-deleted."""
    steps = [("create", inst.created_at, inst.host)]
    if inst.deleted_at:
        steps.append(("delete", inst.deleted_at, inst.host))
    for action, start, host in steps:
        action_id = ids.take("instance_actions")
        out.add("instance_actions", action_row(inst, action_id, action, start, rng), None)
        out.add("instance_actions_events", event_row(ids, action_id, action, start, host), None)


def action_row(
    inst: Instance, action_id: int, action: str, start: dt.datetime, rng: random.Random
) -> dict[str, Any]:
    """One instance action of 40 s, in error if the instance has no host."""
    return {
        "id": action_id,
        "action": action,
        "instance_uuid": inst.uuid,
        "request_id": f"req-{new_uuid(rng)}",
        "user_id": inst.user_id,
        "project_id": inst.project_id,
        "start_time": start,
        "finish_time": None,
        "message": None if inst.host else "Error",
        "created_at": start,
        "updated_at": start + dt.timedelta(seconds=40),
    }


def event_row(
    ids: Ids, action_id: int, action: str, start: dt.datetime, host: Host | None
) -> dict[str, Any]:
    """The one event of an action: the build, the terminate, or the failed schedule."""
    event: tuple[str, str, str | None]
    if host is None:
        event = ("conductor_schedule_and_build_instances", "Error", None)
    elif action == "create":
        event = ("compute__do_build_and_run_instance", "Success", host.name)
    else:
        event = ("compute_terminate_instance", "Success", host.name)
    return {
        "id": ids.take("instance_actions_events"),
        "event": event[0],
        "action_id": action_id,
        "start_time": start + dt.timedelta(seconds=1),
        "finish_time": start + dt.timedelta(seconds=39),
        "result": event[1],
        "traceback": None if host else "NoValidHost: No valid host was found.",
        "host": event[2],
        "details": None,
        "created_at": start + dt.timedelta(seconds=1),
        "updated_at": start + dt.timedelta(seconds=39),
    }
