"""keystoneauth1 sessions and adapters from nova.conf-style sections."""

from __future__ import annotations

import pytest

from nova_audit_ops.clients import secrets
from nova_audit_ops.clients.cinder import _version_root, endpoint_options
from nova_audit_ops.clients.keystone import make_adapter, make_session
from nova_audit_ops.settings.errors import ConfigError

TOKEN = {"auth_type": "admin_token", "endpoint": "http://placement:8778", "token": "t0ken-x"}


def test_current_and_older_nova_conf_endpoint_names() -> None:
    current = make_adapter(
        "placement", {**TOKEN, "region_name": "R1", "valid_interfaces": "internal"}, "placement"
    )
    assert (current.region_name, current.interface) == ("R1", ["internal"])
    older = make_adapter(
        "placement", {**TOKEN, "os_region_name": "R2", "os_interface": "admin"}, "placement"
    )
    assert (older.region_name, older.interface) == ("R2", ["admin"])


def test_password_options_are_secrets_and_missing_ones_are_named() -> None:
    make_session(
        "placement",
        {
            "auth_type": "password",
            "auth_url": "http://k/v3",
            "username": "nova",
            "password": "pw-9f2c1",
            "project_name": "s",
        },
    )
    assert "pw-9f2c1" not in secrets.scrub("login with pw-9f2c1 failed")
    with pytest.raises(ConfigError, match=r"\[placement\].*auth_url"):
        make_session("placement", {"auth_type": "password", "username": "nova"})
    with pytest.raises(ConfigError, match="not a keystoneauth1 plugin"):
        make_session("placement", {"auth_type": "kerberos-ish"})


def test_cinder_endpoint_from_nova_conf_catalog_info() -> None:
    where = endpoint_options(
        {"catalog_info": "volumev3:cinderv3:internalURL", "os_region_name": "R1"}
    )
    assert (where.service_type, where.service_name, where.interface, where.region_name) == (
        "volumev3",
        "cinderv3",
        "internal",
        "R1",
    )
    assert endpoint_options({}).service_type == "volumev3"
    assert _version_root("http://c:8776/v3/abc") == "http://c:8776/"
    assert _version_root("https://cloud/volume/v3") == "https://cloud/volume/"
