"""What deciding an instance's Placement resources needs, read for a batch at once.

The flavor (`instance_extra.flavor`), whether the root disk is a volume (the
boot BDM, or no image), the image's `hw_cpu_policy` (system metadata) and
whether the request spec asks for port resources (QoS ports), each read with
one query per batch and kept as the serialized text Nova wrote.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from nova_audit_ops.nova.schema import table


@dataclass(frozen=True)
class Facts:
    """What deciding an instance's resources needs, read for the whole batch at once."""

    flavor: dict[str, str | None]
    volume_backed: dict[str, bool]
    image_cpu_policy: dict[str, str]
    port_requests: set[str]


def read_facts(cell: Engine, api: Engine, image_refs: Mapping[str, str | None]) -> Facts:
    """Facts of the instances `image_refs` names (instance uuid -> image_ref)."""
    uuids = list(image_refs)
    extra, bdm = table(cell, "instance_extra"), table(cell, "block_device_mapping")
    sysmeta = table(cell, "instance_system_metadata")
    with cell.connect() as conn:
        flavor = dict(
            conn.execute(
                sa.select(extra.c.instance_uuid, extra.c.flavor).where(
                    extra.c.instance_uuid.in_(uuids)
                )
            ).all()
        )
        roots = dict(
            conn.execute(
                sa.select(bdm.c.instance_uuid, bdm.c.destination_type).where(
                    bdm.c.instance_uuid.in_(uuids), bdm.c.deleted == 0, bdm.c.boot_index == 0
                )
            ).all()
        )
        policy = dict(
            conn.execute(
                sa.select(sysmeta.c.instance_uuid, sysmeta.c.value).where(
                    sysmeta.c.instance_uuid.in_(uuids),
                    sysmeta.c.deleted == 0,
                    sysmeta.c.key == "image_hw_cpu_policy",
                )
            ).all()
        )
    volume_backed = {
        uuid: roots[uuid] == "volume" if uuid in roots else not image_ref
        for uuid, image_ref in image_refs.items()
    }
    return Facts(flavor, volume_backed, policy, _port_requests(api, uuids))


def _port_requests(api: Engine, uuids: list[str]) -> set[str]:
    """Instances whose request spec carries port resource requests (QoS ports)."""
    rs = table(api, "request_specs")
    with api.connect() as conn:
        rows = conn.execute(
            sa.select(rs.c.instance_uuid, rs.c.spec).where(rs.c.instance_uuid.in_(uuids))
        ).all()
    return {r.instance_uuid for r in rows if _requested_resources(r.spec)}


def _requested_resources(spec: str | None) -> bool:
    """True when a serialized RequestSpec lists requested resource groups (ports)."""
    try:
        data = json.loads(spec or "{}").get("nova_object.data", {})
    except (ValueError, AttributeError):
        return False
    return bool(data.get("requested_resources"))
