"""Drift at a glance: a nova-audit run that left drift or failed gets a DagRun note.

Airflow 3.3 marks a run that has a note in its own views: the grid draws a
corner on the run's bar (its green or red unchanged), the runs list shows a
filled note icon, and the run's page shows the text. A run's state cannot say
"green but drift left", and task code cannot write a note (the Task SDK has no
route for it), so a listener does: Airflow calls it in the scheduler (or the
API server, or `airflow dags test`) when a run ends, with the run's ORM row in
its session. It reads the summary task's XCom and sets the note in that same
session. Cell tasks that left drift get a task instance note, so their squares
in the grid are marked as well. Notes written by people are never replaced.

Registered by the `nova_audit` plugin (`listeners`); any error is logged by
Airflow's listener manager and never changes the run.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from airflow.listeners import hookimpl
from sqlalchemy import select
from sqlalchemy.orm import Session, object_session

from nova_audit_ops.engine.headline import MARKER, headline
from nova_audit_ops.engine.report import Report

log = logging.getLogger(__name__)

DAG_PREFIX = "nova_audit_"
SUMMARY_TASK = "summary"
CELL_TASKS = ("run_cell", "run_global")
MAX_NOTE = 1000  # dag_run_note.content and task_instance_note.content are String(1000)


@hookimpl
def on_dag_run_success(dag_run: Any, msg: str) -> None:
    annotate(dag_run, failed=False)


@hookimpl
def on_dag_run_failed(dag_run: Any, msg: str) -> None:
    annotate(dag_run, failed=True)


def annotate(dag_run: Any, *, failed: bool) -> None:
    """Note the run (and its cells) with what it left; clear our stale notes on a clean rerun."""
    if not str(dag_run.dag_id).startswith(DAG_PREFIX):
        return
    session, dag_run = _in_session(dag_run)
    if session is None or dag_run is None:
        return
    summary = _report(session, dag_run.id, SUMMARY_TASK, -1)
    if summary is None:
        text = _no_summary(dag_run.dag_id) if failed else None
    else:
        text = headline(summary)
    _set_note(dag_run, text)
    for ti in _cell_tis(session, dag_run):
        report = _report(session, dag_run.id, ti.task_id, ti.map_index, key="report")
        _set_note(ti, headline(report) if report else None)


def _in_session(dag_run: Any) -> tuple[Session | None, Any]:
    """The run as a row of the session that is changing its state.

    The scheduler and the API server hand over a row of their session; `airflow
    dags test` a detached one, whose thread's scoped session is the caller's.
    """
    session = object_session(dag_run)
    if session is not None:
        return session, dag_run
    from airflow import settings
    from airflow.models.dagrun import DagRun

    if settings.Session is None:
        return None, None
    session = settings.Session()
    return session, session.get(DagRun, dag_run.id)


def _no_summary(dag_id: str) -> str:
    return (
        f"{MARKER} FAILURE in {dag_id[len(DAG_PREFIX) :]}: no summary report "
        "(list_cells failed: a bad param, an unknown cell or the API database; read its log)."
    )


def _set_note(row: Any, text: str | None) -> None:
    """Write our note unless a person wrote one; remove ours when there is nothing to say."""
    current = row.note
    if current and _by_a_person(row, str(current)):
        return
    if text is None:
        if current:
            row.note = None
        return
    text = text if len(text) <= MAX_NOTE else text[: MAX_NOTE - 3] + "..."
    if current != text:
        row.note = text


def _by_a_person(row: Any, content: str) -> bool:
    """Notes written in the UI or the REST API carry their author; ours carry none."""
    note = getattr(row, "dag_run_note", None) or getattr(row, "task_instance_note", None)
    return not content.startswith(MARKER) or getattr(note, "user_id", None) is not None


def _cell_tis(session: Session, dag_run: Any) -> list[Any]:
    from airflow.models.taskinstance import TaskInstance  # core only: workers never call this

    query = select(TaskInstance).where(
        TaskInstance.dag_id == dag_run.dag_id,
        TaskInstance.run_id == dag_run.run_id,
        TaskInstance.task_id.in_(CELL_TASKS),
    )
    return list(session.scalars(query))


def _report(
    session: Session, run_pk: int, task_id: str, map_index: int, key: str = "return_value"
) -> Report | None:
    """A report pushed by one task of the run, or None when it pushed none we can read."""
    from airflow.models.xcom import XComModel

    query = select(XComModel.value).where(
        XComModel.dag_run_id == run_pk,
        XComModel.task_id == task_id,
        XComModel.map_index == map_index,
        XComModel.key == key,
    )
    value = session.scalar(query)
    try:
        while isinstance(value, str | bytes):
            value = json.loads(value)
        return Report.from_dict(value) if isinstance(value, dict) else None
    except (ValueError, KeyError, TypeError):
        log.warning("nova-audit: %s's XCom %s is not a report; no note", task_id, key)
        return None
