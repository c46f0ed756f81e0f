"""A Cinder client on the same keystoneauth1 machinery (and retries) as Placement.

Endpoint options follow nova.conf's [cinder] section: `catalog_info`
(service_type:service_name:interface), `os_region_name` and
`endpoint_template`, with the keystoneauth1 names (`service_type`,
`region_name`, `valid_interfaces`, `endpoint_override`) accepted as well.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from keystoneauth1 import adapter
from keystoneauth1 import session as ksa_session

from nova_audit_ops.clients.keystone import connect_retries, make_session
from nova_audit_ops.clients.retry import TRANSIENT_STATUSES, RetryPolicy, send_with_retries
from nova_audit_ops.settings.errors import NovaAuditError, ServiceError, ServiceUnreachableError

CINDER_API_VERSION = "3.44"  # attachments API (3.27+), attachment complete (3.44)
INTERFACE_NAMES = {"publicURL": "public", "internalURL": "internal", "adminURL": "admin"}


class CinderDiscoveryError(NovaAuditError):
    """Cinder's volume endpoint or its v3 version document could not be found."""


@dataclass(frozen=True)
class CinderEndpoint:
    """Where Cinder's volumev3 API is, found the way Nova finds it."""

    service_type: str
    service_name: str | None
    interface: str
    region_name: str | None
    override: str | None


def endpoint_options(options: Mapping[str, str]) -> CinderEndpoint:
    """Read nova.conf-style or keystoneauth1-style endpoint options."""
    service_type, service_name, interface = "volumev3", None, "public"
    if options.get("catalog_info"):
        parts = [*options["catalog_info"].split(":"), "", "", ""][:3]
        service_type = parts[0] or service_type
        service_name = parts[1] or None
        interface = INTERFACE_NAMES.get(parts[2], parts[2] or interface)
    if options.get("valid_interfaces"):
        interface = options["valid_interfaces"].split(",")[0].strip()
    return CinderEndpoint(
        service_type=options.get("service_type") or service_type,
        service_name=options.get("service_name") or service_name,
        interface=interface,
        region_name=options.get("region_name") or options.get("os_region_name") or None,
        override=options.get("endpoint_override") or options.get("endpoint_template") or None,
    )


def endpoint_url(session: ksa_session.Session, where: CinderEndpoint) -> str:
    """The volume API's URL: the override, else the service catalog's entry."""
    if where.override:
        return where.override
    url = session.get_endpoint(
        service_type=where.service_type,
        service_name=where.service_name,
        interface=where.interface,
        region_name=where.region_name,
    )
    if not url:
        raise CinderDiscoveryError(
            f"no {where.service_type} endpoint ({where.interface}) in the service catalog"
        )
    return str(url)


def make_cinder(options: Mapping[str, str], policy: RetryPolicy | None = None) -> adapter.Adapter:
    """A keystoneauth1 Adapter on Cinder's volume v3 endpoint, found the way Nova finds it.

    Plain keystoneauth1 rather than python-cinderclient: the requests then go
    through the one retried send (retry.send_with_retries), and an error body
    in any format (a gateway's, Placement's) is read without crashing, which
    cinderclient's error parser does not manage.
    """
    policy = policy or RetryPolicy()
    where = endpoint_options(options)
    return adapter.Adapter(
        make_session("cinder", options, policy),
        service_type=where.service_type,
        service_name=where.service_name,
        interface=where.interface,
        region_name=where.region_name,
        endpoint_override=where.override,
        default_microversion=CINDER_API_VERSION,
        connect_retries=connect_retries(options, policy),
        connect_retry_delay=max(policy.delay, 0.001),  # fixed; 0 would mean doubling
    )


def _version_root(url: str) -> str:
    """The unversioned root of a volume endpoint (…/v3/<project> → …/)."""
    parts = urlsplit(url)
    path = parts.path
    for marker in ("/v3", "/v2"):
        index = path.rfind(marker)
        if index >= 0 and (len(path) == index + 3 or path[index + 3] == "/"):
            path = path[: index + 1]
            break
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


@dataclass(frozen=True)
class Attachment:
    """One Cinder volume attachment, as `GET /attachments/detail` shows it."""

    id: str
    volume_id: str
    instance_uuid: str | None
    status: str


class CinderError(ServiceError):
    """Cinder answered one request with an error."""


def _error_text(response: Any) -> str:
    """Cinder wraps errors as {"itemNotFound": {"message": ...}}; gateways send anything."""
    try:
        data = response.json() if response.content else None
    except ValueError:
        data = None
    if isinstance(data, dict):
        for value in data.values():
            if isinstance(value, dict) and value.get("message"):
                return str(value["message"])
            if isinstance(value, list) and value and isinstance(value[0], dict):
                return str(value[0].get("detail") or value[0].get("title") or response.reason)
    return str(response.reason or "no reason given")


def _next_link(data: dict[str, Any]) -> str | None:
    """The `next` href of a paged Cinder listing (`attachments_links`), if any."""
    for key, links in data.items():
        if key.endswith("_links") and isinstance(links, list):
            for link in links:
                if isinstance(link, dict) and link.get("rel") == "next" and link.get("href"):
                    return str(link["href"])
    return None


class CinderClient:
    """The few Cinder calls nova-audit makes, each retried as retry.py allows.

    The adapter is built on the first call that needs it. Every request here is
    safe to repeat: reads, and `DELETE /attachments/{id}`, whose repeat after a
    first attempt that landed meets 404 (= already deleted).
    """

    def __init__(
        self,
        options: Mapping[str, str],
        policy: RetryPolicy | None = None,
        api: adapter.Adapter | None = None,
    ) -> None:
        self._options = dict(options)
        self._policy = policy or RetryPolicy()
        self._api = api

    def _adapter(self) -> adapter.Adapter:
        if self._api is None:
            self._api = make_cinder(self._options, self._policy)
        return self._api

    def _send(self, method: str, path: str, **request: Any) -> Any:
        response, _ = send_with_retries(
            self._adapter(),
            method,
            path,
            statuses=TRANSIENT_STATUSES,
            policy=self._policy,
            service="Cinder",
            section="cinder",
            **request,
        )
        return response

    def list_attachments(self) -> list[Attachment]:
        """Every attachment of every project (needs the admin role), following `next` links."""
        found: list[dict[str, Any]] = []
        url: str | None = "/attachments/detail?all_tenants=1"
        while url:
            response = self._send("GET", url)
            if response.status_code in (401, 403):
                raise ServiceUnreachableError(
                    f"Cinder refused to list attachments ({response.status_code}: "
                    f"{_error_text(response)}): the [cinder] user needs the admin role to see "
                    "every project's attachments"
                )
            if response.status_code >= 400:
                raise CinderError(
                    f"Cinder returned {response.status_code} listing attachments: "
                    f"{_error_text(response)}",
                    response.status_code,
                )
            data = response.json()
            found.extend(data.get("attachments") or [])
            url = _next_link(data)
        return [
            Attachment(
                id=str(item["id"]),
                volume_id=str(item.get("volume_id") or ""),
                instance_uuid=item.get("instance") or None,
                status=str(item.get("status") or ""),
            )
            for item in found
        ]

    def delete_attachment(self, attachment_id: str) -> bool:
        """Delete an attachment through Cinder (which detaches on its backend); False if gone.

        A 404, also on a retry whose first attempt landed, means it is deleted.
        """
        try:
            response = self._send("DELETE", f"/attachments/{attachment_id}")
        except ServiceUnreachableError as exc:
            raise CinderError(str(exc)) from None
        if response.status_code == 404:
            return False
        if response.status_code >= 400:
            raise CinderError(
                f"Cinder returned {response.status_code}: {_error_text(response)}",
                response.status_code,
            )
        return True

    def server_versions(self) -> tuple[str, str]:
        """Cinder's v3 (min, max) microversions from its (unauthenticated) version document."""
        api = self._adapter()
        url = _version_root(endpoint_url(api.session, endpoint_options(self._options)))
        response = self._send("GET", url, authenticated=False)
        try:
            versions = response.json()["versions"]
        except (ValueError, KeyError, TypeError):
            raise CinderDiscoveryError(
                f"{url} answered {response.status_code} without a version document"
            ) from None
        for version in versions:
            if str(version.get("version", "")).startswith("3."):
                return str(version.get("min_version") or "3.0"), str(version["version"])
        raise CinderDiscoveryError(f"{url} offers no volume API v3")
