"""The Airflow plugin of nova-audit (entry point airflow.plugins).

It registers the maintenance-window timetable and the listener that notes
runs which left drift or failed (glue/notes.py).
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from nova_audit_ops.glue import notes
from nova_audit_ops.glue.timetables import MaintenanceWindowTimetable


class NovaAuditPlugin(AirflowPlugin):
    name = "nova_audit"
    timetables = [MaintenanceWindowTimetable]
    listeners = [notes]
