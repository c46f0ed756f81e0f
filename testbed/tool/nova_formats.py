"""Let Nova itself produce the data only Nova knows how to write (tool venv only).

Run as `<tools venv>/bin/python nova_formats.py --config-file nova.conf [--request FILE]`
with a JSON request in FILE (or on stdin). Nova's own objects, in the bed's API database:

- create the flavors (flavors + flavor_extra_specs rows) and host aggregates
  (aggregates, aggregate_hosts, aggregate_metadata rows), one object at a time;
- serialize, per instance "shape" (flavor x boot-from-volume x image x zone), what
  Nova stores for an instance: `instance_extra` columns (flavor, numa_topology,
  pci_requests, keypairs), system metadata, the Placement resources Nova would
  allocate (`resources_from_flavor_and_bfv`), and the `request_specs.spec` blob
  with sentinel instance uuid / project / user strings for the caller to fill in.

Seeding 100,000 instances then needs one Nova process, not 100,000 object saves.
The answer is JSON on stdout. This file must not import anything from the project.
"""

from __future__ import annotations

import json
import logging
import sys
import warnings
from typing import Any

SENTINEL_INSTANCE = "99999999-9999-4999-8999-999999999999"
SENTINEL_PROJECT = "@@PROJECT_ID@@"
SENTINEL_USER = "@@USER_ID@@"


def main(argv: list[str]) -> int:
    warnings.simplefilter("ignore")
    logging.disable(logging.WARNING)
    if "--request" in argv:
        at = argv.index("--request")
        with open(argv[at + 1]) as source:
            request = json.load(source)
        argv = argv[:at] + argv[at + 2 :]
    else:
        request = json.load(sys.stdin)

    from nova import config, context, objects
    from nova import utils as nova_utils
    from nova.network import model as network_model
    from nova.scheduler import utils as scheduler_utils
    from nova.virt import hardware
    from oslo_serialization import jsonutils

    objects.register_all()
    config.parse_args(["nova_formats", *argv])  # rpc: flavor.create() notifies
    ctx = context.get_admin_context()
    ctx.user_name, ctx.project_name = "demo", "demo"

    flavors: dict[str, Any] = {}
    answer: dict[str, Any] = {"flavors": {}, "shapes": [], "aggregates": []}
    for spec in request.get("flavors", []):
        extra_specs = spec.pop("extra_specs", {})
        flavor = objects.Flavor(context=ctx, **spec)
        flavor.extra_specs = extra_specs
        flavor.create()
        loaded = objects.Flavor.get_by_flavor_id(ctx, spec["flavorid"])
        flavors[spec["flavorid"]] = loaded
        flavor_info = {"cur": loaded.obj_to_primitive(), "old": None, "new": None}
        objects.Instance._nullify_flavor_description(flavor_info)
        answer["flavors"][spec["flavorid"]] = {
            "id": loaded.id,
            "instance_extra_flavor": jsonutils.dumps(flavor_info),
        }

    for agg in request.get("aggregates", []):
        aggregate = objects.Aggregate(
            context=ctx, name=agg["name"], uuid=agg["uuid"], metadata=agg.get("metadata", {})
        )
        aggregate.create()
        for host in agg.get("hosts", []):
            aggregate.add_host(host)
        answer["aggregates"].append({"uuid": aggregate.uuid, "id": aggregate.id})

    for shape in request.get("shapes", []):
        flavor = flavors[shape["flavorid"]]
        bfv = bool(shape["bfv"])
        image: dict[str, Any] = {
            "id": shape["image_id"],
            "name": shape.get("image_name", "cirros"),
            "min_disk": 0,
            "min_ram": 0,
            "disk_format": "qcow2",
            "container_format": "bare",
            "properties": dict(shape.get("image_properties", {})),
        }
        if bfv:
            # A volume-backed boot: Nova's image meta comes from the volume.
            image = {"properties": {}, "min_disk": 0, "min_ram": 0, "size": 0, "status": "active"}
        image_meta = objects.ImageMeta.from_dict(image)
        numa = hardware.numa_get_constraints(flavor, image_meta)
        pci_requests = objects.InstancePCIRequests(requests=[])
        request_spec = objects.RequestSpec.from_components(
            ctx,
            SENTINEL_INSTANCE,
            image,
            flavor,
            numa,
            pci_requests,
            {},
            None,
            shape.get("availability_zone"),
            project_id=SENTINEL_PROJECT,
            user_id=SENTINEL_USER,
        )
        request_spec.is_bfv = bfv
        spec_blob = request_spec._get_update_primitives()["spec"]

        system_metadata = nova_utils.get_system_metadata_from_image(image, flavor)
        system_metadata.setdefault("image_base_image_ref", "" if bfv else shape["image_id"])
        system_metadata["owner_user_name"] = ctx.user_name
        system_metadata["owner_project_name"] = ctx.project_name
        system_metadata["boot_roles"] = "member,reader"

        answer["shapes"].append(
            {
                "key": shape["key"],
                "resources": scheduler_utils.resources_from_flavor_and_bfv(flavor, bfv),
                "request_spec": spec_blob,
                "instance_extra": {
                    "flavor": answer["flavors"][shape["flavorid"]]["instance_extra_flavor"],
                    "numa_topology": numa._to_json() if numa else None,
                    "pci_requests": pci_requests.to_json(),
                    "keypairs": jsonutils.dumps(objects.KeyPairList(objects=[]).obj_to_primitive()),
                },
                "system_metadata": {k: str(v) for k, v in system_metadata.items()},
                "network_info": network_model.NetworkInfo().json(),
            }
        )

    from nova.objects import service as service_obj

    answer["service_version"] = service_obj.SERVICE_VERSION
    capacity = request.get("host_capacity")
    if capacity:
        answer["compute_node"] = compute_node_columns(capacity)
    json.dump(answer, sys.stdout)
    return 0


def compute_node_columns(capacity: dict[str, int]) -> dict[str, str]:
    """The JSON columns of a libvirt compute node with this capacity, as Nova writes them."""
    from nova import objects
    from oslo_serialization import jsonutils

    vcpus, pcpus = capacity["vcpus"], capacity["pcpus"]
    cell = objects.NUMACell(
        id=0,
        cpuset=set(range(vcpus)),
        pcpuset=set(range(vcpus, vcpus + pcpus)),
        memory=capacity["memory_mb"],
        cpu_usage=0,
        memory_usage=0,
        pinned_cpus=set(),
        siblings=[],
        mempages=[
            objects.NUMAPagesTopology(size_kb=4, total=capacity["memory_mb"] * 256, used=0),
            objects.NUMAPagesTopology(size_kb=2048, total=0, used=0),
        ],
        network_metadata=objects.NetworkMetadata(physnets=set(), tunneled=False),
        socket=0,
    )
    cpu_info = {
        "arch": "x86_64",
        "model": "Cascadelake-Server-noTSX",
        "vendor": "Intel",
        "topology": {"cells": 1, "sockets": 1, "cores": vcpus + pcpus, "threads": 1},
        "features": ["avx2", "sse4.2", "vmx"],
    }
    return {
        "cpu_info": jsonutils.dumps(cpu_info),
        "numa_topology": objects.NUMATopology(cells=[cell])._to_json(),
        "pci_stats": jsonutils.dumps(objects.PciDevicePoolList(objects=[]).obj_to_primitive()),
        "supported_instances": jsonutils.dumps([["x86_64", "kvm", "hvm"]]),
    }


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
