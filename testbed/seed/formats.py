"""What only Nova knows how to write, asked of tool/nova_formats.py and read back."""

from __future__ import annotations

import json
from typing import Any

from testbed.errors import TestBedError
from testbed.seed.capacity import host_capacity
from testbed.seed.model import BFV, FLAVORS, IMAGES, Flavor, Instance, Plan

SENTINEL_INSTANCE = "99999999-9999-4999-8999-999999999999"
SENTINEL_PROJECT = "@@PROJECT_ID@@"
SENTINEL_USER = "@@USER_ID@@"


def parse_formats(stdout: str) -> dict[str, Any]:
    """The JSON nova_formats.py printed, or a TestBedError showing what it printed instead."""
    try:
        return dict(json.loads(stdout))
    except json.JSONDecodeError as exc:
        raise TestBedError(f"nova_formats.py answered no JSON: {stdout[-2000:]}") from exc


def shapes_of(plan: Plan) -> list[dict[str, Any]]:
    """Every (flavor, image) pair the plan's instances use, as nova_formats.py takes it."""
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


def flavor_request(flavor: Flavor) -> dict[str, Any]:
    """One flavor as nova_formats.py creates it."""
    return {
        "flavorid": flavor.flavorid,
        "name": flavor.name,
        "vcpus": flavor.vcpus,
        "memory_mb": flavor.memory_mb,
        "root_gb": flavor.root_gb,
        "ephemeral_gb": flavor.ephemeral_gb,
        "swap": flavor.swap,
        "rxtx_factor": 1.0,
        "vcpu_weight": 0,
        "disabled": False,
        "is_public": True,
        "description": None,
        "extra_specs": dict(flavor.extra_specs),
    }


def formats_request(plan: Plan) -> dict[str, Any]:
    """What nova_formats.py must create and serialize for this plan."""
    return {
        "flavors": [flavor_request(f) for f in FLAVORS],
        "aggregates": plan.aggregates,
        "shapes": shapes_of(plan),
        "host_capacity": host_capacity(plan),
    }


def request_spec(shape: dict[str, Any], inst: Instance) -> str:
    """The shape's serialized request spec, made the instance's own."""
    return (
        shape["request_spec"]
        .replace(SENTINEL_INSTANCE, inst.uuid)
        .replace(SENTINEL_PROJECT, inst.project_id)
        .replace(SENTINEL_USER, inst.user_id)
    )
