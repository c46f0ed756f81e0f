"""A real Airflow notifier for the tests: each notification is one JSON line in a file."""

from __future__ import annotations

import json
from typing import Any

from airflow.sdk import BaseNotifier


class FileNotifier(BaseNotifier):
    """Appends the rendered message and nova-audit's summary to `path`."""

    template_fields = ("message",)

    def __init__(self, path: str, message: str = "{{ nova_audit_summary }}") -> None:
        super().__init__()
        self.path = path
        self.message = message

    def notify(self, context: Any) -> None:
        entry = {
            "message": self.message,
            "summary": context.get("nova_audit_summary"),
            "report": context.get("nova_audit_report"),
            "run_id": context.get("run_id"),
        }
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(entry) + "\n")
