"""A Cinder client on the same keystoneauth1 machinery as Placement."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nova_audit_ops.clients.keystone import make_session

CINDER_API_VERSION = "3.44"  # attachments API (3.27+), attachment complete (3.44)


def make_cinder(options: Mapping[str, str]) -> Any:
    """A python-cinderclient v3 client built on a keystoneauth1 session."""
    from cinderclient import client

    interfaces = options.get("valid_interfaces", "internal,public").split(",")
    return client.Client(
        CINDER_API_VERSION,
        session=make_session("cinder", options),
        service_type=options.get("service_type", "volumev3"),
        region_name=options.get("region_name") or None,
        endpoint_type=interfaces[0].strip(),
        os_endpoint=options.get("endpoint_override") or None,
    )
