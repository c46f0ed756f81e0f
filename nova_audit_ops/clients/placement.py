"""A small Placement client: explicit microversions, generations, bulk reads.

Every call names the microversion it was written for, so a Placement upgrade
never changes what nova-audit sees. Writes guarded by a generation (provider
aggregates, consumer allocations) go through one read → change → write loop
that re-reads on a 409 conflict, at most GENERATION_CONFLICT_ATTEMPTS times.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from urllib.parse import urlencode

from keystoneauth1 import adapter

from nova_audit_ops.clients.keystone import make_adapter
from nova_audit_ops.clients.retry import (
    NO_RETRIES,
    TRANSIENT_STATUSES,
    UNPROCESSED_STATUSES,
    RetryPolicy,
    send_with_retries,
)
from nova_audit_ops.settings.errors import ServiceError

# 1.28: consumer generations in allocations (PUT, and the bulk POST /allocations
# of 1.13); 1.38: consumer_type. 1.19: aggregates with generations. Nova's own
# report client uses these as well.
ALLOCATIONS_MV = "1.28"
AGGREGATES_MV = "1.19"
PROVIDERS_MV = "1.14"
MEMBER_OF_MV = "1.3"
USAGES_MV = "1.9"
VERSIONS_MV = "1.0"
# Attempts at one generation-guarded write before a 409 conflict is final.
GENERATION_CONFLICT_ATTEMPTS = 5

R = TypeVar("R")
AllocationsChange = Callable[[dict[str, Any]], dict[str, Any] | None]


class PlacementError(ServiceError):
    """Placement answered with an error for one request."""

    status: int

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"Placement returned {status}: {message}", status)


@dataclass(frozen=True)
class Rewrite(Generic[R]):
    """What one attempt of a guarded write sends, and what the caller gets back.

    `method` is "PUT" (with `body`) or "DELETE"; None means nothing to write.
    """

    result: R
    method: str | None = None
    body: Any = None


class PlacementClient:
    """Placement's REST API through a keystoneauth1 Adapter."""

    def __init__(self, api: adapter.Adapter, policy: RetryPolicy = NO_RETRIES) -> None:
        self._api = api
        self._policy = policy
        self.requests = 0  # requests sent (retries included), for reports and benchmarks

    @classmethod
    def from_options(
        cls, options: Mapping[str, str], policy: RetryPolicy | None = None
    ) -> PlacementClient:
        policy = policy or RetryPolicy()
        return cls(make_adapter("placement", options, "placement", policy=policy), policy)

    def _request(
        self, method: str, path: str, microversion: str, body: Any = None, guarded: bool = False
    ) -> tuple[int, Any]:
        """Send one request, retrying transient answers where repeating it is safe.

        GET is a read; every PUT nova-audit sends carries a generation (a
        repeat whose first attempt landed meets 409 and rewrite_guarded
        re-reads); DELETE of a consumer's allocations is idempotent, so a 404
        on a retry means the first attempt did it. POST is repeated only on
        answers that mean it was not processed (429, 503), unless `guarded`
        (every consumer it writes carries a generation, as create_consumers).
        """
        unguarded_post = method == "POST" and not guarded
        statuses = UNPROCESSED_STATUSES if unguarded_post else TRANSIENT_STATUSES
        response, attempts = send_with_retries(
            self._api,
            method,
            path,
            statuses=statuses,
            policy=self._policy,
            service="Placement",
            section="placement",
            on_attempt=self._count,
            json=body,
            microversion=microversion,
        )
        if method == "DELETE" and attempts > 1 and response.status_code == 404:
            return 204, None
        data = response.json() if response.content else None
        if response.status_code >= 400:
            errors = (data or {}).get("errors", [{}]) if isinstance(data, dict) else [{}]
            detail = errors[0].get("detail") or errors[0].get("title") or response.reason
            raise PlacementError(response.status_code, str(detail))
        return response.status_code, data

    def _count(self) -> None:
        self.requests += 1

    def get(self, path: str, microversion: str) -> Any:
        return self._request("GET", path, microversion)[1]

    def put(self, path: str, body: Any, microversion: str) -> Any:
        return self._request("PUT", path, microversion, body)[1]

    def post(self, path: str, body: Any, microversion: str) -> Any:
        return self._request("POST", path, microversion, body)[1]

    def delete(self, path: str, microversion: str) -> None:
        self._request("DELETE", path, microversion)

    def resource_providers(self) -> list[dict[str, Any]]:
        """Every resource provider (uuid, name, generation)."""
        return list(self.get("/resource_providers", PROVIDERS_MV)["resource_providers"])

    def provider_allocations(self, rp_uuid: str) -> dict[str, Any]:
        """All allocations against one provider, keyed by consumer, in one request."""
        return dict(
            self.get(f"/resource_providers/{rp_uuid}/allocations", ALLOCATIONS_MV)["allocations"]
        )

    def consumer_allocations(self, consumer: str) -> dict[str, Any]:
        """A consumer's allocations with its generation, project and user."""
        return dict(self.get(f"/allocations/{consumer}", ALLOCATIONS_MV))

    def provider_aggregates(self, rp_uuid: str) -> dict[str, Any]:
        """A provider's aggregates and generation."""
        return dict(self.get(f"/resource_providers/{rp_uuid}/aggregates", AGGREGATES_MV))

    def providers_in_aggregate(self, aggregate_uuid: str) -> set[str]:
        """Uuids of every provider that is a member of the aggregate (one request)."""
        data = self.get(f"/resource_providers?member_of={aggregate_uuid}", MEMBER_OF_MV)
        return {rp["uuid"] for rp in data["resource_providers"]}

    def usages(self, project_id: str, user_id: str) -> dict[str, int]:
        """Placement's total usage of one project and user (one request)."""
        query = "/usages?" + urlencode({"project_id": project_id, "user_id": user_id})
        return {k: int(v) for k, v in self.get(query, USAGES_MV)["usages"].items()}

    def max_microversion(self) -> str:
        """The newest microversion this Placement offers, from its version document."""
        document = self.get("/", VERSIONS_MV)
        return str(document["versions"][0]["max_version"])

    def rewrite_guarded(self, path: str, microversion: str, plan: Callable[[Any], Rewrite[R]]) -> R:
        """Read `path`, let `plan` decide the write, send it; a 409 re-reads and retries.

        `plan` builds the write from what was read, generation included, so a
        retry starts from Placement's current state. After
        GENERATION_CONFLICT_ATTEMPTS conflicts the last PlacementError is raised.
        """
        for attempt in range(1, GENERATION_CONFLICT_ATTEMPTS + 1):
            rewrite = plan(self.get(path, microversion))
            try:
                if rewrite.method == "PUT":
                    self.put(path, rewrite.body, microversion)
                elif rewrite.method == "DELETE":
                    self.delete(path, microversion)
                return rewrite.result
            except PlacementError as exc:
                if exc.status != 409 or attempt == GENERATION_CONFLICT_ATTEMPTS:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def change_provider_aggregates(
        self, rp_uuid: str, change: Callable[[set[str]], set[str]]
    ) -> set[str]:
        """Apply `change` to a provider's aggregates; returns the aggregates written.

        Raises PlacementError (404: no such provider).
        """

        def plan(current: dict[str, Any]) -> Rewrite[set[str]]:
            before = set(current["aggregates"])
            after = change(before)
            if after == before:
                return Rewrite(after)
            body = {
                "aggregates": sorted(after),
                "resource_provider_generation": current["resource_provider_generation"],
            }
            return Rewrite(after, "PUT", body)

        return self.rewrite_guarded(
            f"/resource_providers/{rp_uuid}/aggregates", AGGREGATES_MV, plan
        )

    def rewrite_consumer(self, consumer: str, change: AllocationsChange) -> dict[str, Any] | None:
        """Let `change` build the consumer's new allocations (None: nothing to do), PUT them.

        Returns the body written, with the consumer generation it was written at.
        """

        def plan(current: dict[str, Any]) -> Rewrite[dict[str, Any] | None]:
            body = change(current)
            if body is None:
                return Rewrite(None)
            body["consumer_generation"] = current.get("consumer_generation")
            return Rewrite(body, "PUT", body)

        return self.rewrite_guarded(f"/allocations/{consumer}", ALLOCATIONS_MV, plan)

    def create_consumer(self, consumer: str, change: AllocationsChange) -> dict[str, Any] | None:
        """Write allocations for a consumer Placement should not know yet, in one request.

        `consumer_generation: null` only succeeds for a new consumer; if it exists
        after all (409), fall back to rewrite_consumer and let `change` decide.
        """
        body = change({})
        if body is None:
            return None
        try:
            self.put(
                f"/allocations/{consumer}", {**body, "consumer_generation": None}, ALLOCATIONS_MV
            )
            return body
        except PlacementError as exc:
            if exc.status != 409:
                raise
        return self.rewrite_consumer(consumer, change)

    def create_consumers(self, bodies: Mapping[str, dict[str, Any]]) -> None:
        """Write allocations for consumers Placement should not know yet: one POST /allocations.

        Every consumer carries `consumer_generation: null`, so Placement writes
        all of them or none: if one exists by now, or a provider lacks the
        capacity, it answers 409 and writes nothing. A repeat whose first
        attempt landed meets that 409 too, so transient answers are retried.
        """
        payload = {c: {**body, "consumer_generation": None} for c, body in bodies.items()}
        self._request("POST", "/allocations", ALLOCATIONS_MV, payload, guarded=True)

    def remove_provider_part(self, consumer: str, rp_uuid: str) -> bool:
        """Drop the consumer's allocations against rp_uuid, keeping its other providers' parts.

        Returns False when there was nothing to remove; the last part goes by DELETE.
        """

        def plan(current: dict[str, Any]) -> Rewrite[bool]:
            allocations = dict(current.get("allocations") or {})
            if rp_uuid not in allocations:
                return Rewrite(False)
            del allocations[rp_uuid]
            if not allocations:
                return Rewrite(True, "DELETE")
            body = {
                "allocations": {
                    rp: {"resources": part["resources"]} for rp, part in allocations.items()
                },
                "project_id": current["project_id"],
                "user_id": current["user_id"],
                "consumer_generation": current["consumer_generation"],
            }
            return Rewrite(True, "PUT", body)

        return self.rewrite_guarded(f"/allocations/{consumer}", ALLOCATIONS_MV, plan)
