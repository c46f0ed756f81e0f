"""Removing one provider's part of a consumer's allocations, generation-guarded."""

from __future__ import annotations

from nova_audit_ops.clients.placement import ALLOCATIONS_MV, PlacementClient, PlacementError

CONFLICT_RETRIES = 5


def remove_provider_part(client: PlacementClient, consumer: str, rp_uuid: str) -> bool:
    """Drop the consumer's allocations against rp_uuid, keeping its other providers' parts.

    Returns False when there was nothing to remove. Conflicts re-read and retry.
    """
    for attempt in range(CONFLICT_RETRIES):
        current = client.get(f"/allocations/{consumer}", ALLOCATIONS_MV)
        allocations = dict(current.get("allocations") or {})
        if rp_uuid not in allocations:
            return False
        del allocations[rp_uuid]
        try:
            if not allocations:
                client.delete(f"/allocations/{consumer}", ALLOCATIONS_MV)
                return True
            body = {
                "allocations": {
                    rp: {"resources": part["resources"]} for rp, part in allocations.items()
                },
                "project_id": current["project_id"],
                "user_id": current["user_id"],
                "consumer_generation": current["consumer_generation"],
            }
            client.put(f"/allocations/{consumer}", body, ALLOCATIONS_MV)
            return True
        except PlacementError as exc:
            if exc.status != 409 or attempt == CONFLICT_RETRIES - 1:
                raise
    raise AssertionError("unreachable")  # pragma: no cover
