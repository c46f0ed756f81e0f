"""The notifier named in the config file: loaded at parse time, wired as the DAG's callbacks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nova_audit_ops import registry
from nova_audit_ops.glue.alerts import DriftAlert, load_notifier
from nova_audit_ops.settings.errors import ConfigError
from tests.glue.file_notifier import FileNotifier

NOTIFIER = "tests.glue.file_notifier.FileNotifier"


def test_the_named_notifier_is_built_with_its_args(tmp_path: Path) -> None:
    args = json.dumps({"path": str(tmp_path / "alerts"), "message": "{{ nova_audit_summary }}"})
    notifier = load_notifier(NOTIFIER, args)
    assert isinstance(notifier, FileNotifier)
    assert notifier.path == str(tmp_path / "alerts")
    assert load_notifier(None, None) is None


@pytest.mark.parametrize(
    ("path", "args", "says"),
    [
        ("tests.glue.no_such_module.Notifier", None, "cannot be imported"),
        ("tests.glue.file_notifier.NoSuchClass", None, "cannot be imported"),
        ("json.dumps", None, "is not an Airflow notifier"),
        (NOTIFIER, '{"no_such_arg": 1}', "notifier_args do not fit"),
    ],
)
def test_a_notifier_that_cannot_be_built_names_the_key(
    path: str, args: str | None, says: str
) -> None:
    with pytest.raises(ConfigError, match=says):
        load_notifier(path, args)


@pytest.mark.parametrize(
    ("key", "value"), [("notifier", "not a path!"), ("notifier_args", "[1, 2]")]
)
def test_bad_notifier_settings_are_refused_on_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, key: str, value: str
) -> None:
    config = tmp_path / "nova-audit.conf"
    config.write_text(f"[audit]\n{key} = {value}\n", encoding="utf-8")
    monkeypatch.setenv("NOVA_AUDIT_CONFIG", str(config))
    with pytest.raises(ConfigError, match=key):
        registry.load_config()


def test_the_dag_calls_the_notifier_on_success_and_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nova_audit_ops.glue.dag_factory import build_dag

    config = tmp_path / "nova-audit.conf"
    args = json.dumps({"path": str(tmp_path / "alerts")})
    config.write_text(
        f"[audit.discover_hosts]\nnotifier = {NOTIFIER}\nnotifier_args = {args}\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("NOVA_AUDIT_CONFIG", str(config))
    dag = build_dag("discover_hosts")
    assert dag is not None
    on_success, on_failure = dag.on_success_callback, dag.on_failure_callback
    assert isinstance(on_success, DriftAlert) and not on_success.failure
    assert isinstance(on_failure, DriftAlert) and on_failure.failure
    assert on_success.dag is dag and isinstance(on_success.notifier, FileNotifier)
    other = build_dag("map_instances")
    assert other is not None and other.on_success_callback is None
