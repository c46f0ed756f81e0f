"""Resume markers in Airflow Variables, so every worker of a deployment sees them."""

from __future__ import annotations

import json
from typing import Any

from airflow.sdk import Variable

from nova_audit_ops.settings.errors import ConfigError


class VariableStateStore:
    """One JSON Variable per marker key (`nova_audit.<task>.<cell uuid>`)."""

    def get(self, key: str) -> dict[str, Any] | None:
        raw = Variable.get(key, default=None)
        if raw in (None, "", "null"):
            return None
        try:
            value = json.loads(raw)
        except ValueError:
            raise ConfigError(
                f"Airflow Variable {key} is not a JSON resume marker: delete it to start over"
            ) from None
        return value if isinstance(value, dict) else None

    def put(self, key: str, value: dict[str, Any] | None) -> None:
        if value is None:
            if self.get(key) is not None:
                Variable.delete(key)
            return
        Variable.set(key, json.dumps(value), description="nova-audit resume marker")
