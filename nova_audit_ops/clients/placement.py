"""A small Placement client: explicit microversions, generations, bulk reads.

Every call names the microversion it was written for, so a Placement upgrade
never changes what nova-audit sees.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from keystoneauth1 import adapter, exceptions

from nova_audit_ops.clients.keystone import make_adapter
from nova_audit_ops.settings.errors import ServiceUnreachableError

# 1.28: consumer generations in allocations; 1.38: consumer_type. 1.19: aggregates
# with generations. Nova's own report client uses these as well.
ALLOCATIONS_MV = "1.28"
AGGREGATES_MV = "1.19"
PROVIDERS_MV = "1.14"


class PlacementError(Exception):
    """Placement answered with an error for one request."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"Placement returned {status}: {message}")
        self.status = status


class PlacementClient:
    """Placement's REST API through a keystoneauth1 Adapter."""

    def __init__(self, api: adapter.Adapter) -> None:
        self._api = api
        self.requests = 0  # requests sent, for reports and benchmarks

    @classmethod
    def from_options(cls, options: Mapping[str, str]) -> PlacementClient:
        return cls(make_adapter("placement", options, "placement"))

    def _request(
        self, method: str, path: str, microversion: str, body: Any = None
    ) -> tuple[int, Any]:
        self.requests += 1
        try:
            response = self._api.request(
                path,
                method,
                json=body,
                microversion=microversion,
                raise_exc=False,
            )
        except (exceptions.ConnectFailure, exceptions.EndpointNotFound) as exc:
            raise ServiceUnreachableError(
                f"Placement cannot be reached ({type(exc).__name__}): check the [placement] "
                "section (endpoint, auth_url, region_name, valid_interfaces)."
            ) from None
        data = response.json() if response.content else None
        if response.status_code >= 400:
            errors = (data or {}).get("errors", [{}]) if isinstance(data, dict) else [{}]
            detail = errors[0].get("detail") or errors[0].get("title") or response.reason
            raise PlacementError(response.status_code, str(detail))
        return response.status_code, data

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
