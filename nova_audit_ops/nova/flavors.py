"""An instance's flavor (instance_extra.flavor) turned into Placement resources.

Plain JSON, never Nova's objects: the serialized form is
`{"cur": {"nova_object.data": {...}}, "old": ..., "new": ...}`. The resources
follow Nova's own rules (scheduler utils `resources_from_flavor`): VCPU, or PCPU
for `hw:cpu_policy=dedicated` (+1 for isolated emulator threads), MEMORY_MB,
DISK_GB = root + ephemeral + swap in GiB rounded up with the root left out for
volume-backed instances, and `resources[N]:<CLASS>` extra specs overriding (0
removes a class).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from nova_audit_ops.settings.errors import NovaAuditError

_RESOURCES_SPEC = re.compile(r"^resources([1-9][0-9]*|_[A-Za-z0-9_-]+)?:([A-Z0-9_]+)$")
# Requests heal_allocations must not create blindly: Nova refuses them too.
UNHEALABLE_SPECS = {
    "resources:VGPU": "it requests a VGPU (Nova cannot heal VGPU allocations)",
    "accel:device_profile": "it has a Cyborg device profile (accelerator allocations)",
}


class FlavorError(NovaAuditError):
    """instance_extra.flavor is missing or not Nova's serialized form."""


@dataclass(frozen=True)
class Flavor:
    vcpus: int
    memory_mb: int
    root_gb: int
    ephemeral_gb: int
    swap_mb: int
    extra_specs: dict[str, str] = field(default_factory=dict)


def parse_flavor(raw: str | None) -> Flavor:
    """The current flavor of an instance from its instance_extra.flavor column."""
    if not raw:
        raise FlavorError("instance_extra.flavor is empty")
    try:
        data = json.loads(raw)["cur"]["nova_object.data"]
        return Flavor(
            vcpus=int(data["vcpus"]),
            memory_mb=int(data["memory_mb"]),
            root_gb=int(data.get("root_gb") or 0),
            ephemeral_gb=int(data.get("ephemeral_gb") or 0),
            swap_mb=int(data.get("swap") or 0),
            extra_specs={str(k): str(v) for k, v in (data.get("extra_specs") or {}).items()},
        )
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise FlavorError(f"instance_extra.flavor is not Nova's flavor format ({exc!r})") from None


def unhealable(flavor: Flavor, image_cpu_policy: str | None = None) -> str | None:
    """Why allocations must not be created from this flavor alone, or None."""
    for spec, why in UNHEALABLE_SPECS.items():
        if flavor.extra_specs.get(spec):
            return why
    if _cpu_policy(flavor, image_cpu_policy) == "mixed":
        return "it has a mixed CPU policy (dedicated CPU masks are not derived here)"
    return None


def _cpu_policy(flavor: Flavor, image_cpu_policy: str | None) -> str:
    return (flavor.extra_specs.get("hw:cpu_policy") or image_cpu_policy or "shared").lower()


def resources(
    flavor: Flavor, volume_backed: bool, image_cpu_policy: str | None = None
) -> dict[str, int]:
    """The merged resource request of the flavor, as Placement allocations need it."""
    wanted: dict[str, int] = {
        "VCPU": flavor.vcpus,
        "MEMORY_MB": flavor.memory_mb,
        "DISK_GB": (0 if volume_backed else flavor.root_gb)
        + flavor.ephemeral_gb
        + math.ceil(flavor.swap_mb / 1024),
    }
    overrides: dict[str, int] = {}
    for key, value in flavor.extra_specs.items():
        match = _RESOURCES_SPEC.match(key)
        if match:
            try:
                amount = int(value)
            except ValueError:
                raise FlavorError(
                    f"extra spec {key} = {value!r} is not a whole number of {match.group(2)}"
                ) from None
            overrides[match.group(2)] = overrides.get(match.group(2), 0) + amount
    wanted.update(overrides)
    if _cpu_policy(flavor, image_cpu_policy) == "dedicated" and "PCPU" not in overrides:
        wanted.pop("VCPU", None)
        isolate = flavor.extra_specs.get("hw:emulator_threads_policy") == "isolate"
        wanted["PCPU"] = flavor.vcpus + (1 if isolate else 0)
    return {rc: amount for rc, amount in wanted.items() if amount > 0}


def describe(resources_: dict[str, Any]) -> str:
    return ", ".join(f"{rc}={amount}" for rc, amount in sorted(resources_.items()))
