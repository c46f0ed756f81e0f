"""The synthetic cloud: a consistent Nova + Placement that Nova's own tools accept.

Per cell: compute hosts (services, compute_nodes with mapped=1, host_mappings, a
resource provider with inventories, traits and aggregates), instances with every
row Nova writes for one (instances, instance_extra, info cache, system metadata,
metadata, block device mappings, EC2 id mapping, instance actions and events,
instance_mappings, request_specs) and their Placement allocations. About 20 % of
the instances are soft-deleted the way `instance_destroy` leaves them (children
soft-deleted too, actions kept, mapping queued_for_delete, no allocations). cell0
gets two instances that failed to schedule.

What only Nova knows how to write (flavors, aggregates, the serialized flavor,
NUMA topology, request spec, resources per flavor) comes from Nova itself via
tool/nova_formats.py; the bulk rows are generated here and inserted with
executemany, allocations with multi-consumer POST /allocations. Everything is a
function of (seed, anchor), where anchor is the "now" the timestamps count back
from.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import random
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from testbed.db import connect, insert_rows
from testbed.errors import TestBedError
from testbed.placement import PlacementAPI
from testbed.state import Cell, TestBed

SENTINEL_INSTANCE = "99999999-9999-4999-8999-999999999999"
SENTINEL_PROJECT = "@@PROJECT_ID@@"
SENTINEL_USER = "@@USER_ID@@"

DELETED_EVERY = 5  # every fifth instance is soft-deleted: 20 %
VOLUME_BACKED_SHARE = 0.25
CELL0_INSTANCES = 2
ALLOCATION_BATCH = 500
API_ALLOCATIONS_MAX = 2000  # consumers per cell written through POST /allocations
INSTANCE_CHUNK = 5000
TRAITS = [
    "COMPUTE_NODE",
    "HW_CPU_X86_AVX2",
    "COMPUTE_VOLUME_EXTEND",
    "COMPUTE_NET_ATTACH_INTERFACE",
]


@dataclass(frozen=True)
class Flavor:
    flavorid: str
    name: str
    vcpus: int
    memory_mb: int
    root_gb: int
    ephemeral_gb: int = 0
    swap: int = 0
    extra_specs: dict[str, str] = field(default_factory=dict)
    weight: int = 10


FLAVORS: tuple[Flavor, ...] = (
    Flavor("1", "m1.tiny", 1, 512, 1, weight=15),
    Flavor("2", "m1.small", 1, 2048, 20, weight=30),
    Flavor("3", "m1.medium", 2, 4096, 40, weight=20),
    Flavor("4", "m1.large", 4, 8192, 80, weight=10),
    Flavor("5", "e1.medium", 2, 4096, 20, ephemeral_gb=10, swap=2048, weight=10),
    Flavor("6", "d1.medium", 2, 4096, 20, extra_specs={"hw:cpu_policy": "dedicated"}, weight=8),
    Flavor("7", "r1.custom", 4, 4096, 20, extra_specs={"resources:VCPU": "2"}, weight=7),
)
IMAGES: tuple[tuple[str, str], ...] = (
    ("cirros-0.6.2", "6b1c6a4e-3f0c-4d0e-9c5b-2a8f1f0e9a01"),
    ("ubuntu-24.04", "0e7d5f2c-8a1b-4c3d-9e4f-5a6b7c8d9e02"),
)
BFV = "bfv"


def rng_for(key: str) -> random.Random:
    """A deterministic generator per purpose, so one part's size never shifts another's."""
    return random.Random(key)  # noqa: S311 - test data, not secrets


def new_uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def naive(moment: dt.datetime) -> dt.datetime:
    """Nova stores naive UTC datetimes."""
    return moment.replace(tzinfo=None, microsecond=0)


@dataclass
class Host:
    cell: str
    name: str
    uuid: str
    service_uuid: str
    service_id: int
    node_id: int
    aggregates: list[str] = field(default_factory=list)


@dataclass
class Instance:
    cell: str
    uuid: str
    flavor: Flavor
    image: str  # image name, or BFV
    project_id: str
    user_id: str
    host: Host | None
    created_at: dt.datetime
    deleted_at: dt.datetime | None
    index: int
    id: int = 0

    @property
    def shape(self) -> str:
        return f"{self.flavor.flavorid}/{self.image}"

    @property
    def deleted(self) -> bool:
        return self.deleted_at is not None


@dataclass
class Plan:
    """Every object of the synthetic cloud, before any row is written."""

    hosts: dict[str, list[Host]]
    instances: dict[str, list[Instance]]
    aggregates: list[dict[str, Any]]
    projects: list[tuple[str, list[str]]]
    anchor: dt.datetime


def make_projects(rng: random.Random) -> list[tuple[str, list[str]]]:
    return [
        (
            uuid.UUID(int=rng.getrandbits(128)).hex,
            [uuid.UUID(int=rng.getrandbits(128)).hex for _ in range(2)],
        )
        for _ in range(4)
    ]


def make_hosts(cell: str, count: int, rng: random.Random, first: int = 1) -> list[Host]:
    return [
        Host(
            cell=cell,
            name=f"{cell}-cmp{first + i:03d}",
            uuid=new_uuid(rng),
            service_uuid=new_uuid(rng),
            service_id=first + i,
            node_id=first + i,
        )
        for i in range(count)
    ]


def build_plan(
    cells: Sequence[str],
    hosts_per_cell: int,
    instances_per_cell: int,
    seed: int,
    anchor: dt.datetime,
) -> Plan:
    projects = make_projects(rng_for(f"{seed}:projects"))
    hosts: dict[str, list[Host]] = {}
    instances: dict[str, list[Instance]] = {}
    weights = [f.weight for f in FLAVORS]
    for cell in ["cell0", *cells]:
        rng = rng_for(f"{seed}:{cell}")
        is_cell0 = cell == "cell0"
        hosts[cell] = [] if is_cell0 else make_hosts(cell, hosts_per_cell, rng)
        count = CELL0_INSTANCES if is_cell0 else instances_per_cell
        planned = []
        covered = 0
        for i in range(count):
            flavor = rng.choices(FLAVORS, weights)[0]
            image = BFV if rng.random() < VOLUME_BACKED_SHARE else rng.choice(IMAGES)[0]
            project_id, users = rng.choice(projects)
            deleted = not is_cell0 and i % DELETED_EVERY == DELETED_EVERY - 1
            if not is_cell0 and not deleted and covered < len(FLAVORS):
                # Even a small cloud has every flavor live, booted from images and volumes.
                flavor = FLAVORS[covered]
                image = BFV if covered % 2 else IMAGES[covered % 4 // 2][0]
                covered += 1
            if deleted:
                deleted_at = anchor - dt.timedelta(days=rng.uniform(1, 360))
                created_at = deleted_at - dt.timedelta(days=rng.uniform(0.01, 30))
            else:
                deleted_at = None
                created_at = anchor - dt.timedelta(days=rng.uniform(0.5, 400))
            planned.append(
                Instance(
                    cell=cell,
                    uuid=new_uuid(rng),
                    flavor=flavor,
                    image=image,
                    project_id=project_id,
                    user_id=rng.choice(users),
                    host=None if is_cell0 else hosts[cell][i % len(hosts[cell])],
                    created_at=naive(created_at),
                    deleted_at=naive(deleted_at) if deleted_at else None,
                    index=i,
                )
            )
        planned.sort(key=lambda inst: (inst.created_at, inst.uuid))
        for number, inst in enumerate(planned, start=1):
            inst.id = number
        instances[cell] = planned
    aggregates = []
    agg_rng = rng_for(f"{seed}:aggregates")
    for cell in cells:
        agg: dict[str, Any] = {
            "name": f"{cell}-az",
            "uuid": new_uuid(agg_rng),
            "metadata": {"availability_zone": f"az-{cell}"},
            "hosts": [h.name for h in hosts[cell]],
        }
        aggregates.append(agg)
        for host in hosts[cell]:
            host.aggregates.append(agg["uuid"])
    ssd: dict[str, Any] = {
        "name": "ssd",
        "uuid": new_uuid(agg_rng),
        "metadata": {"ssd": "true"},
        "hosts": [],
    }
    for cell in cells:
        for host in hosts[cell][::2]:
            ssd["hosts"].append(host.name)
            host.aggregates.append(ssd["uuid"])
    aggregates.append(ssd)
    return Plan(hosts, instances, aggregates, projects, naive(anchor))


# --------------------------------------------------------------------------- capacity


def estimated_resources(flavor: Flavor) -> dict[str, int]:
    """An upper bound of what Nova allocates for a flavor (sizing inventories only)."""
    cpu = "PCPU" if flavor.extra_specs.get("hw:cpu_policy") == "dedicated" else "VCPU"
    disk = flavor.root_gb + flavor.ephemeral_gb + math.ceil(flavor.swap / 1024)
    return {cpu: flavor.vcpus, "MEMORY_MB": flavor.memory_mb, "DISK_GB": disk}


def host_capacity(plan: Plan) -> dict[str, int]:
    """One capacity for every host, big enough for the busiest host with 50 % headroom."""
    busiest: dict[str, int] = defaultdict(int)
    for cell_instances in plan.instances.values():
        per_host: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for inst in cell_instances:
            if inst.host and not inst.deleted:
                for rc, amount in estimated_resources(inst.flavor).items():
                    per_host[inst.host.name][rc] += amount
        for usage in per_host.values():
            for rc, amount in usage.items():
                busiest[rc] = max(busiest[rc], amount)
    return {
        "vcpus": max(32, math.ceil(busiest["VCPU"] * 1.5 / 4.0)),
        "pcpus": max(8, math.ceil(busiest["PCPU"] * 1.5)),
        "memory_mb": max(131072, math.ceil(busiest["MEMORY_MB"] * 1.5) + 512),
        "local_gb": max(2000, math.ceil(busiest["DISK_GB"] * 1.5)),
    }


def inventories(capacity: dict[str, int]) -> dict[str, dict[str, Any]]:
    """Placement inventories as the libvirt driver reports them (Nova's default ratios)."""
    return {
        "VCPU": {
            "total": capacity["vcpus"],
            "reserved": 0,
            "min_unit": 1,
            "max_unit": capacity["vcpus"],
            "step_size": 1,
            "allocation_ratio": 4.0,
        },
        "PCPU": {
            "total": capacity["pcpus"],
            "reserved": 0,
            "min_unit": 1,
            "max_unit": capacity["pcpus"],
            "step_size": 1,
            "allocation_ratio": 1.0,
        },
        "MEMORY_MB": {
            "total": capacity["memory_mb"],
            "reserved": 512,
            "min_unit": 1,
            "max_unit": capacity["memory_mb"],
            "step_size": 1,
            "allocation_ratio": 1.0,
        },
        "DISK_GB": {
            "total": capacity["local_gb"],
            "reserved": 0,
            "min_unit": 1,
            "max_unit": capacity["local_gb"],
            "step_size": 1,
            "allocation_ratio": 1.0,
        },
    }


# --------------------------------------------------------------------------- Nova's formats


def parse_formats(stdout: str) -> dict[str, Any]:
    try:
        return dict(json.loads(stdout))
    except json.JSONDecodeError as exc:
        raise TestBedError(f"nova_formats.py answered no JSON: {stdout[-2000:]}") from exc


def shapes_of(plan: Plan) -> list[dict[str, Any]]:
    image_ids = dict(IMAGES)
    keys = sorted({inst.shape for insts in plan.instances.values() for inst in insts})
    flavors = {f.flavorid: f for f in FLAVORS}
    shapes = []
    for key in keys:
        flavorid, image = key.split("/", 1)
        shapes.append(
            {
                "key": key,
                "flavorid": flavors[flavorid].flavorid,
                "bfv": image == BFV,
                "image_id": image_ids.get(image, ""),
                "image_name": image,
                "image_properties": {"hw_disk_bus": "virtio", "os_distro": image.split("-")[0]},
            }
        )
    return shapes


# --------------------------------------------------------------------------- rows


class Ids:
    """Explicit primary keys per table, so child rows can name their parents."""

    def __init__(self, start: dict[str, int] | None = None) -> None:
        self.next: dict[str, int] = defaultdict(lambda: 1, start or {})

    def take(self, table: str) -> int:
        value = self.next[table]
        self.next[table] = value + 1
        return value


def service_rows(hosts: Iterable[Host], version: int, anchor: dt.datetime) -> list[dict[str, Any]]:
    return [
        {
            "id": h.service_id,
            "uuid": h.service_uuid,
            "host": h.name,
            "binary": "nova-compute",
            "topic": "compute",
            "report_count": 1000 + h.service_id,
            "disabled": False,
            "disabled_reason": None,
            "deleted": 0,
            "forced_down": False,
            "last_seen_up": anchor,
            "version": version,
            "created_at": anchor - dt.timedelta(days=420),
            "updated_at": anchor,
        }
        for h in hosts
    ]


def compute_node_rows(
    hosts: Iterable[Host],
    capacity: dict[str, int],
    json_columns: dict[str, str],
    usage: dict[str, dict[str, int]],
    anchor: dt.datetime,
    mapped: int = 1,
) -> list[dict[str, Any]]:
    rows = []
    for h in hosts:
        used = usage.get(h.name, {})
        rows.append(
            {
                "id": h.node_id,
                "uuid": h.uuid,
                "service_id": h.service_id,
                "host": h.name,
                "hypervisor_hostname": h.name,
                "vcpus": capacity["vcpus"],
                "memory_mb": capacity["memory_mb"],
                "local_gb": capacity["local_gb"],
                "vcpus_used": used.get("vcpus", 0),
                "memory_mb_used": used.get("memory_mb", 0) + 512,
                "local_gb_used": used.get("local_gb", 0),
                "hypervisor_type": "QEMU",
                "hypervisor_version": 8002000,
                "cpu_info": json_columns["cpu_info"],
                "disk_available_least": capacity["local_gb"] - used.get("local_gb", 0),
                "free_ram_mb": capacity["memory_mb"] - used.get("memory_mb", 0) - 512,
                "free_disk_gb": capacity["local_gb"] - used.get("local_gb", 0),
                "current_workload": 0,
                "running_vms": used.get("running", 0),
                "host_ip": f"192.0.2.{h.node_id % 250 + 1}",
                "supported_instances": json_columns["supported_instances"],
                "pci_stats": json_columns["pci_stats"],
                "metrics": "[]",
                "extra_resources": None,
                "stats": json.dumps({"num_instances": str(used.get("running", 0))}),
                "numa_topology": json_columns["numa_topology"],
                "cpu_allocation_ratio": 4.0,
                "ram_allocation_ratio": 1.0,
                "disk_allocation_ratio": 1.0,
                "mapped": mapped,
                "deleted": 0,
                "created_at": anchor - dt.timedelta(days=420),
                "updated_at": anchor,
            }
        )
    return rows


def host_usage(instances: Iterable[Instance]) -> dict[str, dict[str, int]]:
    usage: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for inst in instances:
        if inst.host and not inst.deleted:
            u = usage[inst.host.name]
            u["vcpus"] += inst.flavor.vcpus
            u["memory_mb"] += inst.flavor.memory_mb
            u["local_gb"] += inst.flavor.root_gb + inst.flavor.ephemeral_gb
            u["running"] += 1
    return usage


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
    shapes: dict[str, dict[str, Any]],
    flavor_ids: dict[str, int],
    ids: Ids,
    rng: random.Random,
) -> CellRows:
    out = CellRows()
    image_ids = dict(IMAGES)
    for inst in chunk:
        f = inst.flavor
        shape = shapes[inst.shape]
        host = inst.host
        gone = inst.deleted_at
        launched = inst.created_at + dt.timedelta(seconds=40) if host else None
        in_error = host is None
        vm_state = "deleted" if gone else ("error" if in_error else "active")
        out.add(
            "instances",
            {
                "id": inst.id,
                "uuid": inst.uuid,
                "created_at": inst.created_at,
                "updated_at": gone or launched or inst.created_at,
                "user_id": inst.user_id,
                "project_id": inst.project_id,
                "image_ref": "" if inst.image == BFV else image_ids[inst.image],
                "kernel_id": "",
                "ramdisk_id": "",
                "launch_index": 0,
                "key_name": None,
                "key_data": None,
                "power_state": 0 if (gone or in_error) else 1,
                "vm_state": vm_state,
                "task_state": None,
                "memory_mb": f.memory_mb,
                "vcpus": f.vcpus,
                "root_gb": f.root_gb,
                "ephemeral_gb": f.ephemeral_gb,
                "hostname": f"vm-{inst.cell}-{inst.index:06d}",
                "display_name": f"vm-{inst.cell}-{inst.index:06d}",
                "display_description": None,
                "host": host.name if host else None,
                "node": host.name if host else None,
                "compute_id": host.node_id if host else None,
                "launched_on": host.name if host else None,
                "user_data": None,
                "reservation_id": f"r-{uuid.UUID(inst.uuid).hex[:8]}",
                "launched_at": launched,
                "terminated_at": gone,
                "availability_zone": f"az-{inst.cell}" if host else None,
                "locked": False,
                "locked_by": None,
                "os_type": None,
                "architecture": None,
                "vm_mode": None,
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
            },
            gone,
        )
        extra = shape["instance_extra"]
        out.add(
            "instance_extra",
            {
                "id": ids.take("instance_extra"),
                "instance_uuid": inst.uuid,
                "created_at": inst.created_at,
                "updated_at": launched,
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
            },
            gone,
        )
        out.add(
            "instance_info_caches",
            {
                "id": ids.take("instance_info_caches"),
                "instance_uuid": inst.uuid,
                "network_info": shape["network_info"],
                "created_at": inst.created_at,
                "updated_at": launched,
            },
            gone,
        )
        for key, value in shape["system_metadata"].items():
            out.add(
                "instance_system_metadata",
                {
                    "id": ids.take("instance_system_metadata"),
                    "instance_uuid": inst.uuid,
                    "key": key,
                    "value": value,
                    "created_at": inst.created_at,
                    "updated_at": None,
                },
                gone,
            )
        if inst.index % 3 == 0:
            out.add(
                "instance_metadata",
                {
                    "id": ids.take("instance_metadata"),
                    "instance_uuid": inst.uuid,
                    "key": "purpose",
                    "value": rng.choice(["web", "db", "batch"]),
                    "created_at": inst.created_at,
                    "updated_at": None,
                },
                gone,
            )
        for bdm in block_devices(inst, rng):
            bdm["id"] = ids.take("block_device_mapping")
            out.add("block_device_mapping", bdm, gone)
        out.add(
            "instance_id_mappings",
            {
                "id": ids.take("instance_id_mappings"),
                "uuid": inst.uuid,
                "created_at": inst.created_at,
                "updated_at": None,
            },
            gone,
        )
        if in_error:
            out.add(
                "instance_faults",
                {
                    "id": ids.take("instance_faults"),
                    "instance_uuid": inst.uuid,
                    "code": 500,
                    "message": "No valid host was found. ",
                    "details": "",
                    "host": None,
                    "created_at": inst.created_at,
                    "updated_at": None,
                },
                None,
            )
        add_actions(out, inst, ids, rng)
    return out


def block_devices(inst: Instance, rng: random.Random) -> list[dict[str, Any]]:
    """Root disk (image or volume), then ephemeral and swap disks from the flavor."""
    f = inst.flavor
    base = {
        "instance_uuid": inst.uuid,
        "created_at": inst.created_at,
        "updated_at": inst.created_at,
        "snapshot_id": None,
        "no_device": False,
        "connection_info": None,
        "tag": None,
        "attachment_id": None,
        "volume_type": None,
        "encrypted": False,
        "encryption_secret_uuid": None,
        "encryption_format": None,
        "encryption_options": None,
        "image_id": None,
        "volume_id": None,
        "volume_size": None,
        "guest_format": None,
        "disk_bus": "virtio",
        "device_type": "disk",
    }
    if inst.image == BFV:
        volume_id = new_uuid(rng)
        root = {
            **base,
            "uuid": new_uuid(rng),
            "device_name": "/dev/vda",
            "source_type": "volume",
            "destination_type": "volume",
            "volume_id": volume_id,
            "volume_size": f.root_gb or 10,
            "boot_index": 0,
            "delete_on_termination": False,
            "attachment_id": new_uuid(rng) if inst.host else None,
            "connection_info": json.dumps(
                {
                    "driver_volume_type": "iscsi",
                    "serial": volume_id,
                    "data": {"volume_id": volume_id, "target_lun": 0, "access_mode": "rw"},
                }
            )
            if inst.host
            else None,
        }
    else:
        root = {
            **base,
            "uuid": new_uuid(rng),
            "device_name": "/dev/vda",
            "source_type": "image",
            "destination_type": "local",
            "image_id": dict(IMAGES)[inst.image],
            "boot_index": 0,
            "delete_on_termination": True,
        }
    devices = [root]
    if f.ephemeral_gb:
        devices.append(
            {
                **base,
                "uuid": new_uuid(rng),
                "device_name": "/dev/vdb",
                "source_type": "blank",
                "destination_type": "local",
                "volume_size": f.ephemeral_gb,
                "guest_format": None,
                "boot_index": -1,
                "delete_on_termination": True,
            }
        )
    if f.swap:
        devices.append(
            {
                **base,
                "uuid": new_uuid(rng),
                "device_name": "/dev/vdc",
                "source_type": "blank",
                "destination_type": "local",
                "volume_size": math.ceil(f.swap / 1024),
                "guest_format": "swap",
                "boot_index": -1,
                "delete_on_termination": True,
            }
        )
    return devices


def add_actions(out: CellRows, inst: Instance, ids: Ids, rng: random.Random) -> None:
    """`create` (and `delete`) actions with their events; never soft-deleted."""
    steps = [("create", inst.created_at, inst.host)]
    if inst.deleted_at:
        steps.append(("delete", inst.deleted_at, inst.host))
    for action, start, host in steps:
        action_id = ids.take("instance_actions")
        out.add(
            "instance_actions",
            {
                "id": action_id,
                "action": action,
                "instance_uuid": inst.uuid,
                "request_id": f"req-{new_uuid(rng)}",
                "user_id": inst.user_id,
                "project_id": inst.project_id,
                "start_time": start,
                "finish_time": None,
                "message": None if host else "Error",
                "created_at": start,
                "updated_at": start + dt.timedelta(seconds=40),
            },
            None,
        )
        event: tuple[str, str, str | None]
        if host is None:
            event = ("conductor_schedule_and_build_instances", "Error", None)
        elif action == "create":
            event = ("compute__do_build_and_run_instance", "Success", host.name)
        else:
            event = ("compute_terminate_instance", "Success", host.name)
        out.add(
            "instance_actions_events",
            {
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
            },
            None,
        )


def request_spec(shape: dict[str, Any], inst: Instance) -> str:
    return (
        shape["request_spec"]
        .replace(SENTINEL_INSTANCE, inst.uuid)
        .replace(SENTINEL_PROJECT, inst.project_id)
        .replace(SENTINEL_USER, inst.user_id)
    )


# --------------------------------------------------------------------------- Placement


def create_providers(
    api: PlacementAPI, hosts: Iterable[Host], inventory: dict[str, dict[str, Any]]
) -> None:
    """One compute node provider per host, as nova-compute's report client makes it."""
    for host in hosts:
        api.post("/resource_providers", {"uuid": host.uuid, "name": host.name})
        generation = 0
        generation = api.put(
            f"/resource_providers/{host.uuid}/inventories",
            {"resource_provider_generation": generation, "inventories": inventory},
        )["resource_provider_generation"]
        generation = api.put(
            f"/resource_providers/{host.uuid}/traits",
            {"resource_provider_generation": generation, "traits": TRAITS},
        )["resource_provider_generation"]
        if host.aggregates:
            api.put(
                f"/resource_providers/{host.uuid}/aggregates",
                {"resource_provider_generation": generation, "aggregates": host.aggregates},
            )


def allocation_body(inst: Instance, resources: dict[str, int]) -> dict[str, Any]:
    assert inst.host is not None
    return {
        "allocations": {inst.host.uuid: {"resources": resources}},
        "project_id": inst.project_id,
        "user_id": inst.user_id,
        "consumer_generation": None,
        "consumer_type": "INSTANCE",
    }


def post_allocations(
    api: PlacementAPI, live: Sequence[Instance], shapes: dict[str, dict[str, Any]]
) -> int:
    """Allocations of live, scheduled instances, many consumers per POST /allocations."""
    for start in range(0, len(live), ALLOCATION_BATCH):
        body = {
            inst.uuid: allocation_body(inst, shapes[inst.shape]["resources"])
            for inst in live[start : start + ALLOCATION_BATCH]
        }
        api.post("/allocations", body)
    return len(live)


def bulk_allocations(
    placement_db: str, live: Sequence[Instance], shapes: dict[str, dict[str, Any]]
) -> int:
    """The rows POST /allocations would write, inserted in bulk into Placement's database.

    Placement spends ~10 ms per consumer (8-10 statements each), i.e. ~15 min for
    100,000 instances; big seeds send the first batch through the API (which creates
    the consumer type, projects and users) and write the rest like this: consumers
    at generation 1, one allocation row per resource class, and every provider's
    generation bumped once, as one more POST would.
    """
    if not live:
        return 0
    now = naive(dt.datetime.now(dt.timezone.utc))
    with connect(placement_db) as conn:

        def ids(table: str, column: str) -> dict[str, int]:
            rows = conn.execute(sa.text(f"SELECT id, {column} FROM {table}")).all()
            return {str(r[1]): int(r[0]) for r in rows}

        def ensure(table: str, names: set[str]) -> dict[str, int]:
            missing = names - set(ids(table, "external_id"))
            insert_rows(
                conn, table, [{"external_id": n, "created_at": now} for n in sorted(missing)]
            )
            return ids(table, "external_id")

        providers = ids("resource_providers", "uuid")
        classes = ids("resource_classes", "name")
        consumer_type = ids("consumer_types", "name")["INSTANCE"]
        projects = ensure("projects", {i.project_id for i in live})
        users = ensure("users", {i.user_id for i in live})
        for start in range(0, len(live), INSTANCE_CHUNK):
            chunk = live[start : start + INSTANCE_CHUNK]
            insert_rows(
                conn,
                "consumers",
                [
                    {
                        "uuid": i.uuid,
                        "project_id": projects[i.project_id],
                        "user_id": users[i.user_id],
                        "generation": 1,
                        "consumer_type_id": consumer_type,
                        "created_at": now,
                        "updated_at": now,
                    }
                    for i in chunk
                ],
            )
            insert_rows(
                conn,
                "allocations",
                [
                    {
                        "resource_provider_id": providers[i.host.uuid],
                        "consumer_id": i.uuid,
                        "resource_class_id": classes[rc],
                        "used": used,
                        "created_at": now,
                    }
                    for i in chunk
                    if i.host is not None
                    for rc, used in shapes[i.shape]["resources"].items()
                ],
            )
        touched = sorted({providers[i.host.uuid] for i in live if i.host is not None})
        conn.execute(
            sa.text(
                "UPDATE resource_providers SET generation = generation + 1 WHERE id IN :ids"
            ).bindparams(sa.bindparam("ids", expanding=True)),
            {"ids": touched},
        )
    return len(live)


# --------------------------------------------------------------------------- seed


def formats_request(plan: Plan) -> dict[str, Any]:
    """What nova_formats.py must create and serialize for this plan."""
    return {
        "flavors": [
            {
                "flavorid": f.flavorid,
                "name": f.name,
                "vcpus": f.vcpus,
                "memory_mb": f.memory_mb,
                "root_gb": f.root_gb,
                "ephemeral_gb": f.ephemeral_gb,
                "swap": f.swap,
                "rxtx_factor": 1.0,
                "vcpu_weight": 0,
                "disabled": False,
                "is_public": True,
                "description": None,
                "extra_specs": dict(f.extra_specs),
            }
            for f in FLAVORS
        ],
        "aggregates": plan.aggregates,
        "shapes": shapes_of(plan),
        "host_capacity": host_capacity(plan),
    }


def seed(bed: TestBed, plan: Plan, formats: dict[str, Any]) -> dict[str, Any]:
    """Write the planned cloud into the bed (flavors and aggregates already exist)."""
    cells = [c.name for c in bed.compute_cells]
    capacity = host_capacity(plan)
    shapes = {s["key"]: s for s in formats["shapes"]}
    flavor_ids = {k: int(v["id"]) for k, v in formats["flavors"].items()}
    cell_by_name = {c.name: c for c in bed.cells}
    counts: dict[str, Any] = {"capacity": capacity}

    with connect(bed.api_url) as api_conn:
        cell_ids = {
            row.uuid: row.id
            for row in api_conn.execute(sa.text("SELECT id, uuid FROM cell_mappings"))
        }
        for cell_name in cells:
            insert_rows(
                api_conn,
                "host_mappings",
                [
                    {
                        "cell_id": cell_ids[cell_by_name[cell_name].uuid],
                        "host": h.name,
                        "created_at": plan.anchor - dt.timedelta(days=420),
                    }
                    for h in plan.hosts[cell_name]
                ],
            )

    inventory = inventories(capacity)
    for cell_name in ["cell0", *cells]:
        cell = cell_by_name[cell_name]
        hosts = plan.hosts[cell_name]
        instances = plan.instances[cell_name]
        live = [i for i in instances if i.host and not i.deleted]
        seconds: dict[str, float] = {}

        def timed(
            part: str, fn: Callable[..., Any], *args: Any, seconds: dict[str, float] = seconds
        ) -> Callable[[], Any]:
            def run() -> Any:
                started = time.monotonic()
                try:
                    return fn(*args)
                finally:
                    seconds[part] = round(time.monotonic() - started, 2)

            return run

        # Three independent writers: the cell DB, the API DB and Placement.
        results = in_parallel(
            timed(
                "cell_db",
                seed_cell,
                bed,
                cell,
                hosts,
                instances,
                shapes,
                flavor_ids,
                formats,
                capacity,
                plan.anchor,
                bed.seed,
            ),
            timed("api_db", seed_api_rows, bed, cell_ids[cell.uuid], instances, shapes),
            timed("placement", seed_placement, bed, hosts, live, inventory, shapes),
        )
        counts[cell_name] = {
            "hosts": len(hosts),
            "instances": len(instances),
            "deleted": sum(1 for i in instances if i.deleted),
            "allocations": results[2],
            "seconds": seconds,
        }
    return counts


def in_parallel(*jobs: Callable[[], Any]) -> list[Any]:
    """Run the jobs in threads; their results in order, or the first error."""
    results: list[Any] = [None] * len(jobs)
    errors: list[BaseException] = []

    def work(index: int, job: Callable[[], Any]) -> None:
        try:
            results[index] = job()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n, job)) for n, job in enumerate(jobs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results


def seed_placement(
    bed: TestBed,
    hosts: list[Host],
    live: list[Instance],
    inventory: dict[str, dict[str, Any]],
    shapes: dict[str, dict[str, Any]],
) -> int:
    """Resource providers of the cell's hosts and its live instances' allocations."""
    if not bed.placement_url:
        return 0
    api = PlacementAPI(bed.placement_url)
    try:
        create_providers(api, hosts, inventory)
        through_api = live if len(live) <= API_ALLOCATIONS_MAX else live[:ALLOCATION_BATCH]
        allocated = post_allocations(api, through_api, shapes)
    finally:
        api.close()
    return allocated + bulk_allocations(bed.placement_db_url, live[len(through_api) :], shapes)


def seed_cell(
    bed: TestBed,
    cell: Cell,
    hosts: list[Host],
    instances: list[Instance],
    shapes: dict[str, dict[str, Any]],
    flavor_ids: dict[str, int],
    formats: dict[str, Any],
    capacity: dict[str, int],
    anchor: dt.datetime,
    seed_value: int,
) -> None:
    """Hosts and instances of one cell, in the cell database."""
    rng = rng_for(f"{seed_value}:{cell.name}:rows")
    ids = Ids()
    with connect(cell.url) as conn:
        if hosts:
            conductor = {
                **service_rows(hosts[:1], formats["service_version"], anchor)[0],
                "id": len(hosts) + 1,
                "uuid": new_uuid(rng),
                "host": f"{cell.name}-conductor",
                "binary": "nova-conductor",
                "topic": "conductor",
            }
            insert_rows(
                conn,
                "services",
                [*service_rows(hosts, formats["service_version"], anchor), conductor],
            )
            insert_rows(
                conn,
                "compute_nodes",
                compute_node_rows(
                    hosts, capacity, formats["compute_node"], host_usage(instances), anchor
                ),
            )
        for start in range(0, len(instances), INSTANCE_CHUNK):
            rows = instance_rows(
                instances[start : start + INSTANCE_CHUNK], shapes, flavor_ids, ids, rng
            )
            for table in CellRows.TABLES:
                insert_rows(conn, table, rows.rows[table])


def seed_api_rows(
    bed: TestBed, cell_id: int, instances: list[Instance], shapes: dict[str, dict[str, Any]]
) -> None:
    """Instance mappings and request specs of one cell's instances, in the API database."""
    with connect(bed.api_url) as api_conn:
        for start in range(0, len(instances), INSTANCE_CHUNK):
            chunk = instances[start : start + INSTANCE_CHUNK]
            insert_rows(
                api_conn,
                "instance_mappings",
                [
                    {
                        "instance_uuid": i.uuid,
                        "cell_id": cell_id,
                        "project_id": i.project_id,
                        "user_id": i.user_id,
                        "queued_for_delete": i.deleted,
                        "created_at": i.created_at,
                        "updated_at": i.deleted_at,
                    }
                    for i in chunk
                ],
            )
            insert_rows(
                api_conn,
                "request_specs",
                [
                    {
                        "instance_uuid": i.uuid,
                        "spec": request_spec(shapes[i.shape], i),
                        "created_at": i.created_at,
                        "updated_at": None,
                    }
                    for i in chunk
                ],
            )
