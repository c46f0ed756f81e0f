"""Alerts: an Airflow notifier, called when a run leaves drift or fails.

The operator names any BaseNotifier subclass (a provider's SlackNotifier,
SmtpNotifier, ... or their own) with `notifier` and its keyword arguments with
`notifier_args` in the config file. The DAG factory wires it as the DAG's
on_success_callback and on_failure_callback through DriftAlert, which calls it
only for runs that left drift or failed, with the findings' summary in the
context: `nova_audit_summary` (one paragraph) and `nova_audit_report` (the
summary task's report). A notifier that cannot be loaded is a DAG import error
naming the key; a notifier that fails at run time is logged by Airflow and does
not change the run.
"""

from __future__ import annotations

import copy
import importlib
import json
import logging
from typing import Any

from airflow.sdk import BaseNotifier

from nova_audit_ops.engine.headline import MARKER, headline
from nova_audit_ops.engine.report import Code, Report
from nova_audit_ops.settings.errors import ConfigError

log = logging.getLogger(__name__)

SUMMARY_TASK = "summary"


def load_notifier(path: str | None, args_json: str | None) -> BaseNotifier | None:
    """The configured notifier (built at parse time: no I/O), or None when none is set."""
    if not path:
        return None
    module_name, _, attr = path.rpartition(".")
    try:
        target = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"notifier = {path} cannot be imported: {exc}") from None
    args = json.loads(args_json) if args_json else {}
    if isinstance(target, BaseNotifier) and not args:
        return target
    if not (isinstance(target, type) and issubclass(target, BaseNotifier)):
        raise ConfigError(
            f"notifier = {path} is not an Airflow notifier (a BaseNotifier subclass, "
            "or an instance of one without notifier_args)"
        )
    try:
        notifier = target(**args)
    except TypeError as exc:
        raise ConfigError(f"notifier_args do not fit {path}: {exc}") from None
    return notifier


class DriftAlert:
    """A DAG callback that calls `notifier` for a run that left drift (or any failed run)."""

    def __init__(self, notifier: BaseNotifier, *, task: str, failure: bool) -> None:
        self.notifier = notifier
        self.task = task
        self.failure = failure
        self.dag: Any = None  # set by bind(): the DAG the notifier renders its templates with

    def __call__(self, context: Any) -> None:
        report = summary_report(context)
        if not self.failure and (report is None or report.code == Code.OK):
            return  # a clean run: nothing to say
        summary = headline(report) if report is not None else None
        if summary is None:
            reason = context.get("reason") or "failed"
            summary = f"{MARKER} FAILURE in {self.task}: the run {reason} without a summary report."
        context["nova_audit_summary"] = summary
        context["nova_audit_report"] = report.to_dict() if report is not None else None
        if self.dag is not None and not hasattr(context.get("dag"), "get_template_env"):
            context["dag"] = self.dag  # `airflow dags test` hands over its serialized DAG
        copy.deepcopy(self.notifier)(context)  # rendering templates mutates the notifier


def bind(dag: Any) -> None:
    """Tell the DAG's alerts which DAG they belong to (the factory calls it once built)."""
    for callback in (dag.on_success_callback, dag.on_failure_callback):
        if isinstance(callback, DriftAlert):
            callback.dag = dag


def summary_report(context: Any) -> Report | None:
    """The summary task's report of this run, pulled through the callback's task instance."""
    ti = context.get("ti")
    if ti is None:
        return None
    try:
        data = ti.xcom_pull(task_ids=SUMMARY_TASK, key="return_value", map_indexes=-1)
    except ImportError:  # `airflow dags test` runs DAG callbacks with no supervisor to ask
        data = _pull_from_metadata_db(ti.dag_id, ti.run_id)
    except Exception:  # the callback still alerts, without the findings
        log.exception("nova-audit: cannot read the summary report for the alert")
        return None
    while isinstance(data, str | bytes):
        data = json.loads(data)
    return Report.from_dict(data) if isinstance(data, dict) else None


def _pull_from_metadata_db(dag_id: str, run_id: str) -> Any:
    """The summary's XCom straight from the metadata DB, where the caller has it (dags test).

    The thread's scoped session is the caller's: read in it, never close it.
    """
    from airflow import settings
    from airflow.models.xcom import XComModel
    from sqlalchemy import select

    if settings.Session is None:
        return None
    return settings.Session().scalar(
        select(XComModel.value).where(
            XComModel.dag_id == dag_id,
            XComModel.run_id == run_id,
            XComModel.task_id == SUMMARY_TASK,
            XComModel.map_index == -1,
            XComModel.key == "return_value",
        )
    )
