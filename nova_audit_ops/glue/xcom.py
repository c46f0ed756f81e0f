"""Reports as they travel through XCom: capped, and scrubbed of every known secret."""

from __future__ import annotations

from typing import Any

from airflow.sdk import Context

from nova_audit_ops.clients import secrets
from nova_audit_ops.engine.report import Report

REPORT_KEY = "report"
MAX_XCOM_FINDINGS = 500


def xcom_report(report: Report) -> dict[str, Any]:
    """The report as XCom carries it: findings capped, every known secret scrubbed."""
    return dict(_scrubbed(report.to_dict(max_findings=MAX_XCOM_FINDINGS)))


def push_report(context: Context, report: Report) -> dict[str, Any]:
    """Push the report under REPORT_KEY for the summary task."""
    data = xcom_report(report)
    context["ti"].xcom_push(key=REPORT_KEY, value=data)
    return data


def _scrubbed(value: Any) -> Any:
    if isinstance(value, str):
        return secrets.scrub(value)
    if isinstance(value, dict):
        return {k: _scrubbed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrubbed(v) for v in value]
    return value
