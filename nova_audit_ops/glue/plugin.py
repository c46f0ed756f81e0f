"""The Airflow plugin of nova-audit (entry point airflow.plugins).

It registers the maintenance-window timetable, the listener that notes runs
which left drift or failed (glue/notes.py), and the nova-audit page: a FastAPI
app under the api-server (glue/page/) with an entry in the UI's navigation.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from airflow.plugins_manager import AirflowPlugin

from nova_audit_ops.glue import notes
from nova_audit_ops.glue.page import URL_PREFIX
from nova_audit_ops.glue.timetables import MaintenanceWindowTimetable


class _PageApps(Sequence[dict[str, Any]]):
    """The page's FastAPI app, imported only when iterated (by the api-server).

    Every Airflow process loads the plugin; importing FastAPI in each of them
    (task processes included) would cost about 0.1 s apiece.
    """

    def _apps(self) -> list[dict[str, Any]]:
        from nova_audit_ops.glue.page.app import app

        return [{"app": app, "url_prefix": URL_PREFIX, "name": "nova-audit page"}]

    def __getitem__(self, index: Any) -> Any:
        return self._apps()[index]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self._apps())

    def __len__(self) -> int:
        return 1


class NovaAuditPlugin(AirflowPlugin):
    name = "nova_audit"
    timetables = [MaintenanceWindowTimetable]
    listeners = [notes]
    fastapi_apps = _PageApps()  # type: ignore[assignment]  # Airflow only iterates it
    external_views = [
        {
            "name": "nova-audit",
            # relative: the UI resolves it under [api] base_url, so a proxy's sub-path works
            "href": URL_PREFIX.lstrip("/") + "/",
            "url_route": "nova-audit",
            "destination": "nav",
            "nav_top_level": True,
        }
    ]
