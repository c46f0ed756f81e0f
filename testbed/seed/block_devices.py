"""Block device mappings of one instance: root disk, then the flavor's ephemeral and swap."""

from __future__ import annotations

import json
import math
import random
from typing import Any

from testbed.seed.model import BFV, IMAGES, Instance, new_uuid


def block_devices(inst: Instance, rng: random.Random) -> list[dict[str, Any]]:
    """Root disk (image or volume), then ephemeral and swap disks from the flavor."""
    f = inst.flavor
    base = bdm_defaults(inst)
    root = volume_root(inst, base, rng) if inst.image == BFV else image_root(inst, base, rng)
    devices = [root]
    if f.ephemeral_gb:
        devices.append(blank_disk(base, rng, "/dev/vdb", f.ephemeral_gb, None))
    if f.swap:
        devices.append(blank_disk(base, rng, "/dev/vdc", math.ceil(f.swap / 1024), "swap"))
    return devices


def bdm_defaults(inst: Instance) -> dict[str, Any]:
    """The columns every one of the instance's block device mappings starts from."""
    return {
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


def volume_root(inst: Instance, base: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """A boot volume, attached (with connection info) if the instance has a host."""
    volume_id = new_uuid(rng)
    bdm_uuid = new_uuid(rng)
    attachment_id = new_uuid(rng) if inst.host else None
    return {
        **base,
        "uuid": bdm_uuid,
        "device_name": "/dev/vda",
        "source_type": "volume",
        "destination_type": "volume",
        "volume_id": volume_id,
        "volume_size": inst.flavor.root_gb or 10,
        "boot_index": 0,
        "delete_on_termination": False,
        "attachment_id": attachment_id,
        "connection_info": connection_info(volume_id) if inst.host else None,
    }


def connection_info(volume_id: str) -> str:
    """The iSCSI connection info Cinder hands out for an attached volume."""
    return json.dumps(
        {
            "driver_volume_type": "iscsi",
            "serial": volume_id,
            "data": {"volume_id": volume_id, "target_lun": 0, "access_mode": "rw"},
        }
    )


def image_root(inst: Instance, base: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """A local root disk made from the instance's image."""
    return {
        **base,
        "uuid": new_uuid(rng),
        "device_name": "/dev/vda",
        "source_type": "image",
        "destination_type": "local",
        "image_id": dict(IMAGES)[inst.image],
        "boot_index": 0,
        "delete_on_termination": True,
    }


def blank_disk(
    base: dict[str, Any],
    rng: random.Random,
    device_name: str,
    size_gb: int,
    guest_format: str | None,
) -> dict[str, Any]:
    """A blank local disk (ephemeral, or swap with guest_format "swap")."""
    return {
        **base,
        "uuid": new_uuid(rng),
        "device_name": device_name,
        "source_type": "blank",
        "destination_type": "local",
        "volume_size": size_gb,
        "guest_format": guest_format,
        "boot_index": -1,
        "delete_on_termination": True,
    }
