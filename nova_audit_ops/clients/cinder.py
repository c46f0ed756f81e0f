"""A Cinder client on the same keystoneauth1 machinery as Placement.

Endpoint options follow nova.conf's [cinder] section: `catalog_info`
(service_type:service_name:interface), `os_region_name` and
`endpoint_template`, with the keystoneauth1 names (`service_type`,
`region_name`, `valid_interfaces`, `endpoint_override`) accepted as well.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from keystoneauth1 import session as ksa_session

from nova_audit_ops.clients.keystone import make_session
from nova_audit_ops.clients.retry import NO_RETRIES, TRANSIENT_STATUSES, RetryPolicy, with_retries
from nova_audit_ops.settings.errors import NovaAuditError, ServiceError, ServiceUnreachableError

CINDER_API_VERSION = "3.44"  # attachments API (3.27+), attachment complete (3.44)
T = TypeVar("T")
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


def make_cinder(options: Mapping[str, str], policy: RetryPolicy | None = None) -> Any:
    """A python-cinderclient v3 client built on a keystoneauth1 session."""
    from cinderclient import client

    where = endpoint_options(options)
    return client.Client(
        CINDER_API_VERSION,
        session=make_session("cinder", options, policy),
        service_type=where.service_type,
        service_name=where.service_name,
        region_name=where.region_name,
        endpoint_type=where.interface,
        os_endpoint=where.override,
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


def server_versions(
    options: Mapping[str, str], policy: RetryPolicy | None = None
) -> tuple[str, str]:
    """Cinder's v3 (min, max) microversions from its version document.

    Read through the keystoneauth1 session (its timeout and TLS settings),
    not cinderclient's bare `requests` call, which has no timeout.
    """
    sess = make_session("cinder", options, policy)
    url = _version_root(endpoint_url(sess, endpoint_options(options)))
    response = sess.get(url, authenticated=False, raise_exc=False)
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


@dataclass(frozen=True)
class Attachment:
    """One Cinder volume attachment, as `GET /attachments/detail` shows it."""

    id: str
    volume_id: str
    instance_uuid: str | None
    status: str


def retried(call: Callable[[], T], policy: RetryPolicy, what: str) -> T:
    """`call()`, repeated while cinderclient raises a transient HTTP error (429, 5xx).

    Only for reads and idempotent writes; after the budget the last error is raised.
    """
    from cinderclient import exceptions as cinder_exceptions

    def attempt() -> tuple[T | None, Exception | None]:
        try:
            return call(), None
        except cinder_exceptions.ClientException as exc:
            if getattr(exc, "code", None) in TRANSIENT_STATUSES:
                return None, exc
            raise

    def judge(outcome: tuple[T | None, Exception | None]) -> tuple[bool, float | None]:
        error = outcome[1]
        return error is not None, getattr(error, "retry_after", None) or None

    (value, error), _ = with_retries(attempt, judge, policy, what=what)
    if error is not None:
        raise error
    return value  # type: ignore[return-value]


def list_attachments(client: Any, policy: RetryPolicy = NO_RETRIES) -> list[Attachment]:
    """Every attachment of every project; cinderclient follows the `next` links."""
    from cinderclient import exceptions as cinder_exceptions
    from keystoneauth1 import exceptions as ksa_exceptions

    def read() -> Any:
        return list(client.attachments.list(search_opts={"all_tenants": 1}, detailed=True))

    try:
        found = retried(read, policy, "Cinder GET /attachments/detail")
    except (ksa_exceptions.ConnectionError, ksa_exceptions.EndpointNotFound) as exc:
        raise ServiceUnreachableError(
            f"Cinder cannot be reached ({type(exc).__name__}): check the [cinder] section "
            "(auth, catalog_info or endpoint_override, region)."
        ) from None
    except cinder_exceptions.ClientException as exc:
        raise ServiceUnreachableError(
            f"Cinder refused to list attachments ({exc}): the [cinder] user needs the admin "
            "role to see every project's attachments"
        ) from None
    return [
        Attachment(
            id=str(item.id),
            volume_id=str(getattr(item, "volume_id", "") or ""),
            instance_uuid=getattr(item, "instance", None) or None,
            status=str(getattr(item, "status", "") or ""),
        )
        for item in found
    ]


class CinderError(ServiceError):
    """Cinder answered one request with an error."""


def delete_attachment(client: Any, attachment_id: str, policy: RetryPolicy = NO_RETRIES) -> bool:
    """Delete an attachment through Cinder (which detaches on its backend); False if gone.

    Idempotent, so retried: a 404 on a retry means an earlier attempt deleted it.
    """
    from cinderclient import exceptions as cinder_exceptions
    from keystoneauth1 import exceptions as ksa_exceptions

    try:
        retried(
            lambda: client.attachments.delete(attachment_id),
            policy,
            f"Cinder DELETE /attachments/{attachment_id}",
        )
    except cinder_exceptions.NotFound:
        return False
    except cinder_exceptions.ClientException as exc:
        raise CinderError(str(exc), getattr(exc, "code", None)) from None
    except (ksa_exceptions.ConnectionError, ksa_exceptions.EndpointNotFound) as exc:
        raise CinderError(f"Cinder cannot be reached ({type(exc).__name__})") from None
    return True


class CinderClient:
    """The few Cinder calls nova-audit makes; callers never see cinderclient objects.

    The cinderclient client is built on the first call that needs it.
    """

    def __init__(self, options: Mapping[str, str], policy: RetryPolicy | None = None) -> None:
        self._options = dict(options)
        self._policy = policy or RetryPolicy()
        self._client: Any = None

    def _cinder(self) -> Any:
        if self._client is None:
            self._client = make_cinder(self._options, self._policy)
        return self._client

    def list_attachments(self) -> list[Attachment]:
        """Every attachment of every project (needs the admin role)."""
        return list_attachments(self._cinder(), self._policy)

    def delete_attachment(self, attachment_id: str) -> bool:
        """Delete an attachment through Cinder; False if it was already gone."""
        return delete_attachment(self._cinder(), attachment_id, self._policy)

    def server_versions(self) -> tuple[str, str]:
        """Cinder's v3 (min, max) microversions, read from its version document."""
        return server_versions(self._options, self._policy)
