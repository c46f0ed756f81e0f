"""The Airflow plugin that registers nova-audit's timetable (entry point airflow.plugins)."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from nova_audit_ops.glue.timetables import MaintenanceWindowTimetable


class NovaAuditPlugin(AirflowPlugin):
    name = "nova_audit"
    timetables = [MaintenanceWindowTimetable]
