"""The floors of the package (docs/architecture.md): each imports only from floors below it.

Read with every import statement of every module, function-level ones included,
so an import dodged into a function still counts.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "nova_audit_ops"
NAME = "nova_audit_ops"
# The floor of every top-level part of the package; a module of a floor may import
# from its own floor (without cycles) and from floors below, never from above.
FLOORS = {
    "settings": 0,
    "nova": 1,
    "clients": 1,
    "engine": 2,
    "tasks": 3,
    "runner": 4,
    "registry": 4,
    "grants": 4,
    "sweep": 4,
    "fanout": 4,
    "glue": 5,
    "cli": 5,
}
AIRFLOW_GLUE = "glue"


@cache
def modules() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _resolve(name: str) -> str | None:
    """The package module an imported name lives in (`a.b.c` may be `a.b`'s attribute c)."""
    while name and name not in modules():
        name = name.rpartition(".")[0]
    return name or None


@cache
def imports(module: str) -> tuple[set[str], set[str]]:
    """(package modules, outside top-level packages) imported anywhere in `module`."""
    tree = ast.parse(modules()[module].read_text(encoding="utf-8"))
    inside: set[str] = set()
    outside: set[str] = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level:
            pytest.fail(f"{module}: relative import; use absolute nova_audit_ops imports")
        for name in names:
            if name.split(".")[0] == NAME:
                target = _resolve(name)
                if target and target != module and target != NAME:
                    inside.add(target)
            else:
                outside.add(name.split(".")[0])
    return inside, outside


def part(module: str) -> str:
    pieces = module.split(".")
    return pieces[1] if len(pieces) > 1 else ""


def floor(module: str) -> int:
    return FLOORS[part(module)]


def test_every_module_has_a_floor() -> None:
    loose = sorted(m for m in modules() if m != NAME and part(m) not in FLOORS)
    assert loose == [], "give these modules a floor (or move them into one)"


def test_no_module_imports_from_a_floor_above_it() -> None:
    upward = [
        f"{m} (floor {floor(m)}) imports {t} (floor {floor(t)})"
        for m in modules()
        if m != NAME
        for t in imports(m)[0]
        if floor(t) > floor(m)
    ]
    assert upward == []


def test_settings_never_imports_tasks_or_their_registry() -> None:
    for module in (m for m in modules() if part(m) == "settings"):
        assert {part(t) for t in imports(module)[0]} <= {"settings"}, module


def test_tasks_import_no_other_task() -> None:
    tasks = {m for m in modules() if part(m) == "tasks" and m.count(".") == 2}
    for module in tasks:
        assert not (imports(module)[0] & tasks), module


def test_tasks_folder_holds_only_tasks() -> None:
    """One module per maintenance task and nothing else: each exposes SPEC and run_cell."""
    for path in sorted((PACKAGE / "tasks").glob("*.py")):
        if path.name == "__init__.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names = {
            t.id
            for n in tree.body
            if isinstance(n, ast.Assign)
            for t in n.targets
            if isinstance(t, ast.Name)
        }
        functions = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
        assert "SPEC" in names and "run_cell" in functions, path.name


def test_no_import_cycle() -> None:
    """Tarjan's strongly connected components over the whole import graph."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for target in imports(module)[0]:
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in on_stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == module:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in modules():
        if module not in index:
            visit(module)
    assert cycles == []


def test_airflow_is_imported_from_the_glue_package_only() -> None:
    offenders = sorted(
        m for m in modules() if "airflow" in imports(m)[1] and part(m) != AIRFLOW_GLUE
    )
    assert offenders == []


def test_dag_files_only_wire() -> None:
    for path in sorted((ROOT / "dags").glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        imported = {
            n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module
        } | {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        assert imported <= {f"{NAME}.glue.dag_factory"}, path.name


@pytest.mark.parametrize(
    ("module", "target", "allowed"),
    [
        pytest.param("nova_audit_ops.settings.config", "nova_audit_ops.registry", False, id="up"),
        pytest.param("nova_audit_ops.tasks.purge", "nova_audit_ops.engine.report", True, id="down"),
        pytest.param("nova_audit_ops.nova.locate", "nova_audit_ops.clients.db", True, id="same"),
    ],
)
def test_the_floor_rule_itself(module: str, target: str, allowed: bool) -> None:
    """The rule the tests above apply, on cases whose answer is known."""
    assert (floor(target) <= floor(module)) is allowed
