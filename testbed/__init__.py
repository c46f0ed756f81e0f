"""A real Nova to test against: Nova's own schemas, real Placement, synthetic cloud, drift.

bed = testbed.up("/tmp/bed", backend="mariadb")
twin = testbed.clone(bed, "/tmp/twin")
testbed.drift(twin, "unmapped_hosts", 2)
testbed.nova_manage(twin, "cell_v2", "discover_hosts", "--verbose")
testbed.down(twin.dir); testbed.down(bed.dir)
"""

from testbed.backends import mariadb_available
from testbed.bed import clone, down, gc, reset, up
from testbed.drift import SCENARIOS, drift, heartbeat
from testbed.errors import TestBedError
from testbed.manage import nova_manage, nova_manage_command
from testbed.snapshot import snapshot_placement, snapshot_tables
from testbed.state import CELL0_UUID, Cell, TestBed, load

__all__ = [
    "CELL0_UUID",
    "SCENARIOS",
    "Cell",
    "TestBed",
    "TestBedError",
    "clone",
    "down",
    "drift",
    "gc",
    "heartbeat",
    "load",
    "mariadb_available",
    "nova_manage",
    "nova_manage_command",
    "reset",
    "snapshot_placement",
    "snapshot_tables",
    "up",
]
