"""The synthetic cloud's vocabulary: flavors, images, hosts, instances and the plan.

Everything is a function of (seed, anchor): one deterministic generator per
purpose (`rng_for`), uuids drawn from it (`new_uuid`), naive UTC timestamps.
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
from dataclasses import dataclass, field
from typing import Any

DELETED_EVERY = 5  # every fifth instance is soft-deleted: 20 %
VOLUME_BACKED_SHARE = 0.25
CELL0_INSTANCES = 2
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
    """A version-4 uuid drawn from `rng`."""
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
