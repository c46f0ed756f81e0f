"""Writing one consumer's allocations with its consumer generation, retried on conflict."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from nova_audit_ops.clients.placement import ALLOCATIONS_MV, PlacementClient, PlacementError

CONFLICT_RETRIES = 4
USAGES_MV = "1.9"


def rewrite_consumer(
    client: PlacementClient,
    consumer: str,
    change: Callable[[dict[str, Any]], dict[str, Any] | None],
) -> dict[str, Any] | None:
    """Read the consumer, let `change` build the new body (None: nothing to do), PUT it.

    A 409 (another writer bumped the consumer generation) re-reads and retries.
    """
    for attempt in range(CONFLICT_RETRIES):
        current = client.get(f"/allocations/{consumer}", ALLOCATIONS_MV)
        body = change(current)
        if body is None:
            return None
        body["consumer_generation"] = current.get("consumer_generation")
        try:
            client.put(f"/allocations/{consumer}", body, ALLOCATIONS_MV)
            return body
        except PlacementError as exc:
            if exc.status != 409 or attempt == CONFLICT_RETRIES - 1:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def create_consumer(
    client: PlacementClient,
    consumer: str,
    change: Callable[[dict[str, Any]], dict[str, Any] | None],
) -> dict[str, Any] | None:
    """Write allocations for a consumer Placement should not know yet, in one request.

    `consumer_generation: null` only succeeds for a new consumer; if it exists after
    all (409), fall back to reading it and letting `change` decide.
    """
    body = change({})
    if body is None:
        return None
    try:
        client.put(
            f"/allocations/{consumer}", {**body, "consumer_generation": None}, ALLOCATIONS_MV
        )
        return body
    except PlacementError as exc:
        if exc.status != 409:
            raise
    return rewrite_consumer(client, consumer, change)


def usages(client: PlacementClient, project_id: str, user_id: str) -> dict[str, int]:
    """Placement's total usage of one project and user (one request)."""
    query = "/usages?" + urlencode({"project_id": project_id, "user_id": user_id})
    return {k: int(v) for k, v in client.get(query, USAGES_MV)["usages"].items()}
