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

model: flavors, images, hosts, instances, the plan; plan: build_plan;
capacity: host sizes and inventories; formats: the nova_formats.py exchange;
hosts, instances, block_devices: cell DB rows; allocations: Placement;
writer: `seed`, which writes it all.
"""

from __future__ import annotations

from testbed.seed.capacity import host_capacity, inventories
from testbed.seed.formats import formats_request, parse_formats
from testbed.seed.model import FLAVORS, IMAGES, TRAITS, Flavor, Host, Instance, Plan
from testbed.seed.plan import build_plan
from testbed.seed.writer import seed

__all__ = [
    "FLAVORS",
    "IMAGES",
    "TRAITS",
    "Flavor",
    "Host",
    "Instance",
    "Plan",
    "build_plan",
    "formats_request",
    "host_capacity",
    "inventories",
    "parse_formats",
    "seed",
]
