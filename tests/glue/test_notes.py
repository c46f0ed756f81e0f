"""The notes the listener writes: ours are replaced or removed, people's never."""

from __future__ import annotations

from typing import Any

import pytest

from nova_audit_ops.glue.notes import MAX_NOTE, _set_note


@pytest.fixture
def dag_run() -> Any:
    from airflow.models.dagrun import DagRun

    return DagRun(dag_id="nova_audit_discover_hosts", run_id="manual__1")


def test_our_note_is_written_replaced_and_removed(dag_run: Any) -> None:
    _set_note(dag_run, "nova-audit: drift left in discover_hosts")
    assert dag_run.note == "nova-audit: drift left in discover_hosts"
    _set_note(dag_run, "nova-audit: FAILURE in discover_hosts")
    assert dag_run.note == "nova-audit: FAILURE in discover_hosts"
    _set_note(dag_run, None)
    assert dag_run.note is None


def test_a_clean_run_without_a_note_gets_none(dag_run: Any) -> None:
    _set_note(dag_run, None)
    assert dag_run.dag_run_note is None


@pytest.mark.parametrize(
    ("content", "user"), [("checked by hand, ignore", None), ("nova-audit: edited", "admin")]
)
def test_a_persons_note_is_kept(dag_run: Any, content: str, user: str | None) -> None:
    dag_run.note = (content, user)
    _set_note(dag_run, "nova-audit: drift left in discover_hosts")
    assert dag_run.note == content
    _set_note(dag_run, None)
    assert dag_run.note == content


def test_a_long_note_fits_the_column(dag_run: Any) -> None:
    _set_note(dag_run, "nova-audit: " + "x" * 2000)
    assert len(dag_run.note) == MAX_NOTE and dag_run.note.endswith("...")
