"""How big every host is: one capacity for all, sized from the busiest host."""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

from testbed.seed.model import Flavor, Plan


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


def inventory(total: int, allocation_ratio: float, reserved: int = 0) -> dict[str, Any]:
    """One resource class's inventory, usable in units of one up to all of it."""
    return {
        "total": total,
        "reserved": reserved,
        "min_unit": 1,
        "max_unit": total,
        "step_size": 1,
        "allocation_ratio": allocation_ratio,
    }


def inventories(capacity: dict[str, int]) -> dict[str, dict[str, Any]]:
    """Placement inventories as the libvirt driver reports them (Nova's default ratios)."""
    return {
        "VCPU": inventory(capacity["vcpus"], 4.0),
        "PCPU": inventory(capacity["pcpus"], 1.0),
        "MEMORY_MB": inventory(capacity["memory_mb"], 1.0, reserved=512),
        "DISK_GB": inventory(capacity["local_gb"], 1.0),
    }
