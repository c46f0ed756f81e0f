"""keystoneauth1 options for Placement, Nova and Cinder from one Airflow connection.

The connection (conn_type `nova`) maps its fields onto the options a config
file section would hold: login → username, password → password, host →
auth_url. Its extra holds the other options shared by the three services
(auth_type, project_name, region_name, valid_interfaces, ...), and optional
dicts `placement`, `nova` and `cinder` override them for one service. Extras
are read one known option name at a time; unknown keys are logged (by name
only) and ignored. Every secret option's value is registered as a secret.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from keystoneauth1 import exceptions, loading

from nova_audit_ops.clients import secrets
from nova_audit_ops.settings.errors import ConfigError

LOG = logging.getLogger("nova_audit")

SERVICES = ("placement", "nova", "cinder")
# What clients/keystone.py and clients/cinder.py read besides the auth plugin's options.
ENDPOINT_OPTIONS = (
    "auth_type",
    "auth_plugin",
    "cafile",
    "certfile",
    "keyfile",
    "insecure",
    "timeout",
    "valid_interfaces",
    "os_interface",
    "service_type",
    "service_name",
    "region_name",
    "os_region_name",
    "endpoint_override",
    "endpoint_template",
    "catalog_info",
    "connect_retries",
    "status_code_retries",
)
FIELD_OPTIONS = {"login": "username", "password": "password", "host": "auth_url"}


def plugin_options(auth_type: str) -> list[Any]:
    """The keystoneauth1 options of an auth plugin (none for an unknown plugin)."""
    try:
        return list(loading.get_plugin_loader(auth_type).get_options())
    except exceptions.NoMatchingPlugin:
        return []


def option_names(opt: Any) -> list[str]:
    """The names a config section may give one plugin option (as clients/keystone.py reads)."""
    names = [opt.dest, opt.name.replace("-", "_")]
    names += [d.dest for d in getattr(opt, "deprecated", []) or []]
    return list(dict.fromkeys(names))


def as_option(value: Any) -> str | None:
    """An extra's JSON value as a config-file string (lists joined by commas)."""
    if value is None or isinstance(value, dict):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value)
    return str(value)


def _named(source: Mapping[str, Any], names: Iterable[str]) -> dict[str, str]:
    picked: dict[str, str] = {}
    for name in names:
        value = as_option(source.get(name))
        if value is not None and value != "":
            picked[name] = value
    return picked


def _service_extra(extra: Mapping[str, Any], service: str, conn_id: str) -> Mapping[str, Any]:
    own = extra.get(service) or {}
    if not isinstance(own, Mapping):
        raise ConfigError(f"connection {conn_id}: extra {service!r} must be a JSON object")
    return own


def service_options(conn: Any, service: str) -> dict[str, str]:
    """One service's options from the connection: shared extras, fields, then its own dict.

    A service without an auth_type gets no options, as if its config section were absent.
    """
    extra: Mapping[str, Any] = conn.extra_dejson
    own = _service_extra(extra, service, conn.conn_id)
    auth_type = as_option(own.get("auth_type") or extra.get("auth_type"))
    if not auth_type:
        return {}
    opts = plugin_options(auth_type)
    names = [*ENDPOINT_OPTIONS, *(n for opt in opts for n in option_names(opt))]
    options = _named(extra, names)
    for field, option in FIELD_OPTIONS.items():
        value = getattr(conn, field, None)
        if value:
            options[option] = str(value)
    options.update(_named(own, names))
    _register_secrets(options, opts, conn.password)
    _log_ignored(conn.conn_id, service, own, names)
    return options


def _register_secrets(options: Mapping[str, str], opts: Iterable[Any], password: Any) -> None:
    secrets.register(str(password) if password else None)
    for opt in opts:
        if opt.secret:
            for name in option_names(opt):
                secrets.register(options.get(name))


def _log_ignored(conn_id: str, service: str, own: Mapping[str, Any], names: list[str]) -> None:
    ignored = sorted(set(own) - set(names))
    if ignored:
        LOG.warning("connection %s: ignoring unknown %s option(s) %s", conn_id, service, ignored)


def unknown_shared_keys(conn: Any) -> list[str]:
    """Extra keys no service reads (names only), so an operator can spot a typo."""
    extra: Mapping[str, Any] = conn.extra_dejson
    auth_types = {as_option(extra.get("auth_type"))}
    auth_types |= {
        as_option(_service_extra(extra, s, conn.conn_id).get("auth_type")) for s in SERVICES
    }
    known = {*ENDPOINT_OPTIONS, *SERVICES}
    for auth_type in filter(None, auth_types):
        known |= {n for opt in plugin_options(auth_type) for n in option_names(opt)}
    return sorted(set(extra) - known)


def connection_services(conn: Any) -> dict[str, dict[str, str]]:
    """The options of every service, as the config file's [placement]/[nova]/[cinder] would hold."""
    ignored = unknown_shared_keys(conn)
    if ignored:
        LOG.warning("connection %s: ignoring unknown extra key(s) %s", conn.conn_id, ignored)
    services = {service: service_options(conn, service) for service in SERVICES}
    if not any(services.values()):
        raise ConfigError(
            f'connection {conn.conn_id} has no auth_type: set extra "auth_type" (e.g. '
            '"password", or "admin_token" with "endpoint" and "token"), for all services '
            'or in extra "placement", "nova" or "cinder"'
        )
    return services
