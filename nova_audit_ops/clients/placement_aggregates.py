"""Provider aggregate reads and generation-guarded writes in Placement."""

from __future__ import annotations

from collections.abc import Callable

from nova_audit_ops.clients.placement import AGGREGATES_MV, PlacementClient, PlacementError

MEMBER_OF_MV = "1.3"
CONFLICT_RETRIES = 5


def providers_in_aggregate(client: PlacementClient, aggregate_uuid: str) -> set[str]:
    """Uuids of every provider that is a member of the aggregate (one request)."""
    data = client.get(f"/resource_providers?member_of={aggregate_uuid}", MEMBER_OF_MV)
    return {rp["uuid"] for rp in data["resource_providers"]}


def change_provider_aggregates(
    client: PlacementClient, rp_uuid: str, change: Callable[[set[str]], set[str]]
) -> set[str]:
    """Apply `change` to a provider's aggregates, re-reading on generation conflicts.

    Returns the aggregates written. Raises PlacementError (404: no such provider).
    """
    for attempt in range(CONFLICT_RETRIES):
        current = client.get(f"/resource_providers/{rp_uuid}/aggregates", AGGREGATES_MV)
        before = set(current["aggregates"])
        after = change(before)
        if after == before:
            return after
        body = {
            "aggregates": sorted(after),
            "resource_provider_generation": current["resource_provider_generation"],
        }
        try:
            client.put(f"/resource_providers/{rp_uuid}/aggregates", body, AGGREGATES_MV)
            return after
        except PlacementError as exc:
            if exc.status != 409 or attempt == CONFLICT_RETRIES - 1:
                raise
    raise AssertionError("unreachable")  # pragma: no cover
