"""Every maintenance task by name: its spec and its module's entry points."""

from __future__ import annotations

from types import ModuleType

from nova_audit_ops.tasks import (
    discover_hosts,
    heal_instance_mappings,
    map_instances,
    orphaned_allocations,
    sync_aggregates,
)
from nova_audit_ops.tasks.spec import TaskSpec

MODULES: dict[str, ModuleType] = {
    module.SPEC.name: module
    for module in (
        discover_hosts,
        map_instances,
        heal_instance_mappings,
        sync_aggregates,
        orphaned_allocations,
    )
}
TASKS: dict[str, TaskSpec] = {name: module.SPEC for name, module in MODULES.items()}


def spec(name: str) -> TaskSpec:
    """The task called `name`, or a ConfigError listing the known ones."""
    from nova_audit_ops.errors import ConfigError

    try:
        return TASKS[name]
    except KeyError:
        raise ConfigError(f"unknown task {name!r}: tasks are {', '.join(sorted(TASKS))}") from None
