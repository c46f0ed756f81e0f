"""Airflow's providers manager finds the `nova` connection type and its hook."""

from __future__ import annotations

from airflow.providers_manager import ProvidersManager
from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime

from nova_audit_ops.glue.hooks.nova import NovaHook
from nova_audit_ops.glue.provider_info import get_provider_info


def test_provider_info_names_the_hook_of_the_nova_connection_type() -> None:
    info = get_provider_info()
    (conn_type,) = info["connection-types"]
    assert conn_type["connection-type"] == NovaHook.conn_type
    assert conn_type["hook-class-name"].endswith(".NovaHook")


def test_providers_manager_registers_the_nova_connection_type() -> None:
    assert "nova-audit" in ProvidersManager().providers
    hook = ProvidersManagerTaskRuntime().hooks["nova"]
    assert hook is not None
    assert hook.hook_class_name == "nova_audit_ops.glue.hooks.nova.NovaHook"
    assert hook.connection_type == "nova"
