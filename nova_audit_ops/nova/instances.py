"""Facts about instance rows that several tasks share."""

from __future__ import annotations

VM_STATE_SOFT_DELETED = "soft-delete"
MIGRATION_MARKER_PROJECT = "INSTANCE_MIGRATION_MARKER"  # nova-manage map_instances' fake row


def is_deleted(deleted: int | None) -> bool:
    """Nova soft-deletes by setting `deleted` to the row id; 0 means live."""
    return bool(deleted)


def is_queued_for_delete(deleted: int | None, vm_state: str | None) -> bool:
    """What Nova's own online migration sets: deleted or soft-deleted instances."""
    return is_deleted(deleted) or vm_state == VM_STATE_SOFT_DELETED
