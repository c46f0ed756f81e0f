"""Every maintenance task by name: its spec and its module's entry points.

The only code that knows every task: the settings floor is handed TASKS from here.
"""

from __future__ import annotations

from types import ModuleType

from nova_audit_ops.clients.db import register_url_secret
from nova_audit_ops.settings import config as config_module
from nova_audit_ops.settings.config import AuditConfig
from nova_audit_ops.settings.errors import ConfigError
from nova_audit_ops.settings.spec import TaskSpec
from nova_audit_ops.tasks import (
    archive_deleted_rows,
    discover_hosts,
    heal_allocations,
    heal_instance_mappings,
    host_fault,
    map_instances,
    orphaned_allocations,
    preflight,
    purge,
    sync_aggregates,
    volume_attachments,
)

MODULES: dict[str, ModuleType] = {
    module.SPEC.name: module
    for module in (
        discover_hosts,
        map_instances,
        heal_instance_mappings,
        heal_allocations,
        sync_aggregates,
        orphaned_allocations,
        archive_deleted_rows,
        purge,
        host_fault,
        volume_attachments,
        preflight,
    )
}
TASKS: dict[str, TaskSpec] = {name: module.SPEC for name, module in MODULES.items()}
ALIASES: dict[str, str] = {alias: name for name, s in TASKS.items() for alias in s.aliases}
# `nova-audit run all` runs the tasks in this order: the checks first, then hosts and
# mappings (the allocation and attachment tasks find instances through them), then
# Placement, Cinder and failed hosts, and archive before the purge of what it archived.
SWEEP_ORDER: tuple[str, ...] = (
    preflight.SPEC.name,
    discover_hosts.SPEC.name,
    map_instances.SPEC.name,
    heal_instance_mappings.SPEC.name,
    heal_allocations.SPEC.name,
    orphaned_allocations.SPEC.name,
    sync_aggregates.SPEC.name,
    volume_attachments.SPEC.name,
    host_fault.SPEC.name,
    archive_deleted_rows.SPEC.name,
    purge.SPEC.name,
)


def spec(name: str) -> TaskSpec:
    """The task called `name`, or a ConfigError listing the known ones."""
    try:
        return TASKS[ALIASES.get(name, name)]
    except KeyError:
        raise ConfigError(f"unknown task {name!r}: tasks are {', '.join(sorted(TASKS))}") from None


def load_config(path: str | None = None, *, must_exist: bool = True) -> AuditConfig:
    """The config file (explicit path, $NOVA_AUDIT_CONFIG or the default), validated
    against every task's knobs."""
    config = config_module.load(path, TASKS, must_exist=must_exist)
    for url in config.replica_urls():  # the lag guard's replicas: their passwords are secrets
        register_url_secret(url)
    return config
