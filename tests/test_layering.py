"""The rules of direction: the task engine never imports Airflow."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "nova_audit_ops"
AIRFLOW_FREE = [
    "tasks",
    "nova",
    "clients",
    "report.py",
    "config.py",
    "runner.py",
    "cli.py",
    "state.py",
    "secrets.py",
    "knobs.py",
    "render.py",
    "windows.py",
    "errors.py",
    "deadline.py",
]


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def files(entry: str) -> list[Path]:
    target = PACKAGE / entry
    return sorted(target.rglob("*.py")) if target.is_dir() else [target]


def test_task_engine_never_imports_airflow() -> None:
    offenders = []
    for entry in AIRFLOW_FREE:
        for path in files(entry):
            bad = {m for m in imported_modules(path) if m.split(".")[0] == "airflow"}
            bad |= {
                m
                for m in imported_modules(path)
                if m.startswith(
                    (
                        "nova_audit_ops.operators",
                        "nova_audit_ops.hooks",
                        "nova_audit_ops.dag_factory",
                    )
                )
            }
            if bad:
                offenders.append(f"{path.relative_to(PACKAGE)}: {sorted(bad)}")
    assert offenders == []


def test_layering_list_covers_every_module() -> None:
    glue = {
        "hooks",
        "operators",
        "dag_factory.py",
        "timetables.py",
        "plugin.py",
        "__init__.py",
        "py.typed",
        "__pycache__",
    }
    present = {p.name for p in PACKAGE.iterdir()}
    assert present - glue - set(AIRFLOW_FREE) == set()


def test_dag_files_only_wire() -> None:
    dags = Path(__file__).resolve().parents[1] / "dags"
    for path in dags.glob("*.py"):
        assert imported_modules(path) <= {"nova_audit_ops.dag_factory"}, path.name
