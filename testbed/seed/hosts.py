"""Rows of compute hosts: nova-compute services and their compute nodes."""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from testbed.seed.model import Host, Instance


def service_rows(hosts: Iterable[Host], version: int, anchor: dt.datetime) -> list[dict[str, Any]]:
    """One up, enabled nova-compute service per host."""
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
    """One compute node per host, its usage as the resource tracker reports it."""
    return [
        compute_node_row(h, capacity, json_columns, usage.get(h.name, {}), anchor, mapped)
        for h in hosts
    ]


def compute_node_row(
    h: Host,
    capacity: dict[str, int],
    json_columns: dict[str, str],
    used: dict[str, int],
    anchor: dt.datetime,
    mapped: int,
) -> dict[str, Any]:
    """The compute node of one host."""
    return {
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


def host_usage(instances: Iterable[Instance]) -> dict[str, dict[str, int]]:
    """Per host name: vcpus, memory_mb, local_gb and running count of its live instances."""
    usage: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for inst in instances:
        if inst.host and not inst.deleted:
            u = usage[inst.host.name]
            u["vcpus"] += inst.flavor.vcpus
            u["memory_mb"] += inst.flavor.memory_mb
            u["local_gb"] += inst.flavor.root_gb + inst.flavor.ephemeral_gb
            u["running"] += 1
    return usage
