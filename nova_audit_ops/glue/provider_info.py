"""What nova-audit tells Airflow's providers manager: the `nova` connection type.

Registered through the `apache_airflow_provider` entry point, as providers are,
so the UI's connection form offers `nova` with NovaHook's fields and its Test
button calls NovaHook.test_connection().
"""

from __future__ import annotations

from importlib import metadata
from typing import Any

PACKAGE = "nova-audit"


def get_provider_info() -> dict[str, Any]:
    """The provider description Airflow validates against its provider_info schema."""
    return {
        "package-name": PACKAGE,
        "name": "nova-audit",
        "description": "Keeps a Nova cloud consistent with itself, Placement and Cinder.",
        "versions": [metadata.version(PACKAGE)],
        "connection-types": [
            {
                "connection-type": "nova",
                "hook-class-name": "nova_audit_ops.glue.hooks.nova.NovaHook",
            }
        ],
    }
