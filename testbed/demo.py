"""`make demo`: a running Airflow with drift found and healed; `make demo-down` stops it.

Brings up a test bed (MariaDB, real Placement, nova-api, Cinder) and an Airflow
stack (api-server, scheduler, dag-processor; LocalExecutor, PostgreSQL metadata
DB) under .demo/, injects drift, then runs every enabled task's DAG through the
scheduler: all audits at once, the heals in two waves (hosts and mappings
first, which the allocation and attachment tasks find instances through), all
audits again, printing each run's summary report as a table. Everything stays
running for the UI; `python -m testbed.demo down` stops it. A new demo stops
the old one first.
"""

from __future__ import annotations

import configparser
import secrets
import sys
import threading
import time
from pathlib import Path

from nova_audit_ops import registry
from nova_audit_ops.engine import render
from nova_audit_ops.engine.report import CRASH_EXIT_CODE
from nova_audit_ops.settings.spec import TaskSpec
from testbed import airflow_stack, demo_services, nova_api
from testbed import cinder as cinder_bed
from testbed.bed import up
from testbed.demo_runs import Api, Run, crash_note, execute
from testbed.drift import drift, heartbeat
from testbed.state import TestBed

STARTED = time.monotonic()
USER = "admin"
PAGE = "/nova-audit/"
DRIFT = {
    "discover_hosts": [("unmapped_hosts", 2)],
    "map_instances": [("unmapped_instances", 4)],
    "heal_instance_mappings": [
        ("null_cell_mappings", 2),
        ("orphan_mappings", 2),
        ("wrong_cell_mappings", 2),
    ],
    "heal_allocations": [("missing_allocations", 3), ("wrong_user_allocations", 2)],
    "sync_aggregates": [("missing_aggregates", 2)],
    "orphaned_allocations": [("orphan_allocations", 2)],
    "host_fault": [("silent_hosts", 1)],
}
CINDER_DRIFT = [
    ("deleted_servers", cinder_bed.deleted_servers, 2),
    ("unknown_servers", cinder_bed.unknown_servers, 1),
]
# Healed first, each wave's DAG runs side by side: the tasks after them find
# instances through host and instance mappings; archive runs before purge.
BEFORE, REPAIR, AFTER = "before the repairs", "the repair", "after the repairs"
FIRST_WAVE = ("discover_hosts", "map_instances", "heal_instance_mappings", "archive_deleted_rows")


def elapsed() -> str:
    return f"{time.monotonic() - STARTED:.0f} s"


def airflow_settings(password_file: Path, config: Path) -> dict[str, str]:
    """The demo's Airflow: one `admin` user, six task slots, the bed's nova-audit config."""
    return {
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USER}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(password_file),
        "AIRFLOW__CORE__PARALLELISM": "6",
        # Downstream tasks first, so runs already under way finish before new ones start:
        # with the default (`downstream`) every summary waits for every queued cell task,
        # and no run of the plan finishes (nor lets the next one start) until all do.
        "AIRFLOW__CORE__DEFAULT_TASK_WEIGHT_RULE": "upstream",
        # The DAG files do not change under the demo: reparse each every 2 min, not 30 s
        # (the dag-processor took a quarter of a core at 30 s).
        "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "120",
        "NOVA_AUDIT_CONFIG": str(config),
    }


def edit_config(path: Path, sections: dict[str, dict[str, str]]) -> None:
    """Set keys of the bed's nova-audit config, section by section."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(path)
    for name, values in sections.items():
        parser[name] = {**(parser[name] if parser.has_section(name) else {}), **values}
    with open(path, "w") as handle:
        parser.write(handle)


def inject_drift(bed: TestBed, cinder: cinder_bed.Cinder) -> dict[str, dict]:
    """All drift first, as a real cloud would have it; returns per-task extra params."""
    extra: dict[str, dict] = {}
    for task in registry.TASKS:
        for scenario, count in DRIFT.get(task, []):
            changes = drift(bed, scenario, count)
            print(f"== drift injected for {task}: {scenario} x{len(changes)}")
            if scenario == "silent_hosts":  # the operator fenced them and names them
                extra[task] = {"hosts": [c["host"] for c in changes]}
    for name, inject, count in CINDER_DRIFT:
        changes = inject(bed, cinder, count)
        print(f"== drift injected for volume_attachments: {name} x{len(changes)}")
    return extra


def bring_up(password: str) -> tuple[TestBed, airflow_stack.AirflowStack, cinder_bed.Cinder]:
    """The bed and its services, with Airflow's metadata DB migrated alongside."""
    home = demo_services.AIRFLOW_HOME
    home.mkdir(parents=True)
    password_file = home / "passwords.json"
    password_file.write_text(f'{{"{USER}": "{password}"}}\n')
    password_file.chmod(0o600)
    settings = airflow_settings(password_file, demo_services.BED_DIR / "nova-audit.conf")
    prepared: list[airflow_stack.AirflowStack] = []
    failed: list[BaseException] = []

    def prepare() -> None:  # the services that do not read the nova-audit config start early
        try:
            prepared.append(airflow_stack.prepare(home, settings))
            airflow_stack.launch(prepared[0], only=("api-server", "scheduler"))
            print(f"== {elapsed()}: Airflow's api-server and scheduler started", flush=True)
        except BaseException as exc:  # re-raised below, in the main thread
            failed.append(exc)

    migrating = threading.Thread(target=prepare)
    migrating.start()
    print("== bringing up the test bed (MariaDB, real Placement) ...", flush=True)
    try:
        bed = up(demo_services.BED_DIR, backend="mariadb")
        # No clock schedules: the runs the UI shows are the demo's and the operator's.
        # Set before Airflow parses the DAGs; the rest of the config is read at run time.
        edit_config(bed.config_path, {"audit": {"schedule": "none"}})
        print(f"== {elapsed()}: test bed up", flush=True)
    finally:
        migrating.join()  # a teardown must not race a launch still under way
    if failed:
        raise failed[0]
    airflow_stack.launch(prepared[0])  # the dag-processor, which parses the DAGs
    print("== starting nova-api and Cinder (api, volume with the fake driver) ...", flush=True)
    nova = nova_api.start(bed)
    demo_services.record_nova(nova)
    cinder = cinder_bed.start(bed)
    demo_services.record_cinder(cinder)
    cinder_bed.seed(bed, cinder)
    edit_config(
        bed.config_path,
        {
            "cinder": cinder_bed.config_section(cinder),
            "nova": nova_api.config_section(nova),
            # no grace period for dangling attachments: one heal run shows the repair
            "audit.volume_attachments": {"grace_period": "0"},
        },
    )
    return bed, prepared[0], cinder


def plan(tasks: list[str], extra: dict[str, dict]) -> list[Run]:
    """Every task audited, the repairs healed in two waves, every task audited again;
    a heal follows its task's audit, the second wave the first, the last audits every heal."""
    before = {t: Run(t, "audit", BEFORE, extra.get(t, {})) for t in tasks}
    repairs = [t for t in tasks if not registry.TASKS[t].read_only]
    first = [
        Run(t, "heal", REPAIR, extra.get(t, {}), [before[t]]) for t in repairs if t in FIRST_WAVE
    ]
    second = [
        Run(t, "heal", REPAIR, extra.get(t, {}), [before[t], *first])
        for t in repairs
        if t not in FIRST_WAVE
    ]
    heals = first + second
    after = [Run(t, "audit", AFTER, extra.get(t, {}), [before[t], *heals]) for t in tasks]
    return [*before.values(), *heals, *after]


def progress(run: Run) -> None:
    verdict = (
        f"{run.report.code.name} ({len(run.report.findings)} findings)" if run.report else "CRASHED"
    )
    print(
        f"   {run.dag_id:<36} {run.mode:<5} {run.state:<7} {verdict:<24} {run.seconds:4.0f} s",
        flush=True,
    )


def run_everything(
    stack: airflow_stack.AirflowStack, bed: TestBed, password: str, extra: dict[str, dict]
) -> list[Run]:
    """The plan's runs through the scheduler, then each one's findings, in plan order."""
    tasks = [t for t, spec in registry.TASKS.items() if enabled(bed, spec)]
    stack.wait_for_dags([f"nova_audit_{t}" for t in tasks])
    api = Api(stack, USER, password)
    for task in tasks:
        api.unpause(f"nova_audit_{task}")
    runs = plan(tasks, extra)
    print(f"== {elapsed()}: {len(runs)} DAG runs through the scheduler, each once its turn comes:")
    heartbeat(bed)
    execute(api, stack, runs, tick=lambda: heartbeat(bed), done=progress)  # computes keep reporting
    for run in runs:
        print(f"\n== {run.dag_id}, mode={run.mode}, {run.label} [{run.state}]")
        print(render.table(run.report) if run.report else "!! " + crash_note(stack, run))
    return runs


def enabled(bed: TestBed, spec: TaskSpec) -> bool:
    return bool(registry.load_config(str(bed.config_path)).settings(spec)["enabled"])


def verdict(runs: list[Run]) -> int:
    """1 if a run crashed or failed in Airflow (none should), or the last audit of a task
    could not finish (code 2); else 0."""
    last = {r.task: r for r in runs}  # the after-the-repairs audits come last
    bad = [r for r in runs if r.code == CRASH_EXIT_CODE or r.state != "success"]
    bad += [r for r in last.values() if r.code >= 2 and r not in bad]
    for run in bad:
        print(f"!! {run.dag_id} ({run.mode}, {run.label}): run {run.state}, code {run.code}")
    return 1 if bad else 0


def farewell(stack: airflow_stack.AirflowStack, password: str) -> None:
    base = f"http://127.0.0.1:{airflow_stack.stack_port(stack)}"
    print(
        f"\n== demo ready in {elapsed()}; still running on 127.0.0.1:"
        "\n   the test bed (MariaDB databases, Placement, nova-api, Cinder) and Airflow"
        "\n   (api-server, scheduler, dag-processor; metadata DB on the machine's PostgreSQL)."
        f"\n   nova-audit page: {base}{PAGE}"
        f"\n   Airflow UI:      {base}/   login {USER} / {password}"
        f"\n                    (password also in {demo_services.AIRFLOW_HOME}/passwords.json)"
        "\n   The last audits are clean except orphaned allocations (deleted only when"
        "\n   `delete` is on and two runs a grace period apart saw them); host_fault acted"
        "\n   on the silent host because the demo names it in `hosts`, as an operator does."
        "\n   `make demo-down` stops all of it."
    )


def main() -> int:
    if stopped := demo_services.teardown():
        print(f"== stopped the previous demo: {len(stopped)} processes and databases")
    password = secrets.token_urlsafe(12)
    try:
        bed, stack, cinder = bring_up(password)
        extra = inject_drift(bed, cinder)
        runs = run_everything(stack, bed, password, extra)
    except BaseException:
        print("!! the demo failed; stopping what it started", file=sys.stderr)
        demo_services.teardown()
        raise
    code = verdict(runs)
    farewell(stack, password)
    return code


def down() -> int:
    stopped = demo_services.teardown()
    print("\n".join(f"stopped {item}" for item in stopped) or "no demo was running")
    return 0


if __name__ == "__main__":
    raise SystemExit(down() if sys.argv[1:] == ["down"] else main())
