"""`nova-audit`: run any maintenance task once, or all of them, from cron or by hand.

Every DAG param is an option of the same name (`batch_size` -> `--batch-size`).
Exit code = the report's code (0 OK, 1 WARNING, 2 FAILURE); a bad option, an
unknown cell or an unreachable API database exits 2 having written nothing.
255 means a bug of nova-audit: a crash outside the runner, or a cell the runner
contained (its report is still printed, the other cells still ran). A failing
database or service never exits 255. `run all` exits with the worst task's code.
Tables fit 120 columns, or the terminal's width when it is wider.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import traceback
from collections.abc import Sequence
from typing import Any

from nova_audit_ops import registry, runner, sweep
from nova_audit_ops.clients import secrets
from nova_audit_ops.engine import render
from nova_audit_ops.engine.report import CRASH_EXIT_CODE, Code
from nova_audit_ops.nova.cells import list_cells
from nova_audit_ops.registry import TASKS
from nova_audit_ops.registry import spec as task_spec
from nova_audit_ops.settings.errors import NovaAuditError
from nova_audit_ops.settings.knobs import Knob
from nova_audit_ops.settings.spec import CELLS, MODES

RUN_ALL_HELP = (
    "run every enabled task once, in this order: "
    + ", ".join(registry.SWEEP_ORDER)
    + ". Left out: tasks with `enabled = false`; host_fault unless [audit.host_fault] hosts "
    "names fenced hosts; volume_attachments without a [cinder] auth_type. A task that "
    "fails never stops the others; the exit code is the worst task's (255 > 2 > 1 > 0)."
)


def _add_knob(parser: argparse.ArgumentParser, knob: Knob) -> None:
    flag = knob.flag
    if knob.name == "cells":
        parser.add_argument(
            "--cell", dest="cells", action="append", metavar="NAME_OR_UUID", help=knob.help
        )
        parser.add_argument("--cells", dest="cells_csv", metavar="A,B", help=argparse.SUPPRESS)
    elif knob.kind == "bool":
        parser.add_argument(
            flag,
            dest=knob.name,
            action=argparse.BooleanOptionalAction,
            default=None,
            help=knob.help,
        )
    elif knob.kind == "choice":
        parser.add_argument(flag, dest=knob.name, choices=knob.choices, help=knob.help)
    else:
        parser.add_argument(flag, dest=knob.name, metavar=knob.name.upper(), help=knob.help)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nova-audit", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run one maintenance task once")
    tasks = run.add_subparsers(dest="task", required=True, metavar="TASK")
    _add_run_all(tasks)
    for name, spec in sorted(TASKS.items()):
        task_parser = tasks.add_parser(
            name, aliases=list(spec.aliases), help=spec.summary, description=spec.summary
        )
        task_parser.add_argument("--config-file", help="nova-audit.conf or nova.conf to read")
        task_parser.add_argument("--json", action="store_true", help="print the report as JSON")
        for knob in spec.param_knobs():
            _add_knob(task_parser, knob)
    _add_grants(commands)
    commands.add_parser("tasks", help="list the maintenance tasks")
    cells = commands.add_parser("cells", help="list the cells (database URLs masked)")
    cells.add_argument("--config-file")
    return parser


def _add_run_all(tasks: Any) -> None:
    """`run all`: only the options every task takes (--mode does not reach preflight)."""
    run_all = tasks.add_parser(
        "all", help="every enabled task once; exit code = the worst", description=RUN_ALL_HELP
    )
    run_all.add_argument("--config-file", help="nova-audit.conf or nova.conf to read")
    run_all.add_argument("--json", action="store_true", help="print one JSON object")
    run_all.add_argument(
        "--mode", choices=MODES, help="audit or heal for every task; default: each task's config"
    )
    _add_knob(run_all, CELLS)


def _add_grants(commands: Any) -> None:
    grants_parser = commands.add_parser(
        "grants",
        help="print the MariaDB GRANT statements and Keystone roles the tasks need",
        description="Print, per database (the API's and each cell's, from cell_mappings), "
        "the GRANT statements an account needs to run the tasks: SELECT only for audit, "
        "plus exactly the INSERT/UPDATE/DELETE each task performs for heal. Connects with "
        "the config file's URLs as they are ([audit] database_user is not applied): run "
        "it with an account that can read cell_mappings and every cell's schema.",
    )
    grants_parser.add_argument("--config-file", help="nova-audit.conf or nova.conf to read")
    grants_parser.add_argument("--mode", choices=MODES, default="audit")
    grants_parser.add_argument(
        "--task", action="append", dest="tasks", metavar="TASK", help="repeat; default: all"
    )
    grants_parser.add_argument(
        "--user", required=True, metavar="NAME@HOST", help="the account to grant to"
    )


def _grants(args: argparse.Namespace) -> int:
    from nova_audit_ops import grants
    from nova_audit_ops.clients.db import Engines

    user, host = grants.account(args.user)
    specs = [task_spec(name) for name in args.tasks] if args.tasks else grants.all_tasks()
    cfg = registry.load_config(args.config_file)
    engines = Engines(cfg.require_api_connection(), cfg.cell_connections, cfg.database_connection)
    try:
        databases = grants.plan(engines, list_cells(engines.api), specs, args.mode == "heal")
    finally:
        engines.dispose()
    names = ", ".join(s.name for s in specs)
    print(f"-- nova-audit grants, mode {args.mode}, for {names}")
    print(f"-- create the account first: CREATE USER '{user}'@'{host}' IDENTIFIED BY '...';")
    print("\n".join(grants.statements(databases, user, host)))
    roles = grants.role_lines(specs, args.mode == "heal")
    print("-- Keystone roles ([placement], [nova], [cinder] accounts; default policies):")
    print("\n".join(roles) if roles else "--   none: these tasks call no service")
    return int(Code.OK)


def terminal_width() -> int:
    """120 columns, or the terminal's width when it is wider."""
    return max(render.WIDTH, shutil.get_terminal_size((render.WIDTH, 24)).columns)


def _cells_given(args: argparse.Namespace) -> list[str]:
    csv = getattr(args, "cells_csv", None) or ""
    return (getattr(args, "cells", None) or []) + [c for c in csv.split(",") if c]


def _run_all(args: argparse.Namespace) -> int:
    cfg = registry.load_config(args.config_file)
    result = sweep.run_sweep(cfg, mode=args.mode, cells=_cells_given(args))
    print(sweep.to_json(result) if args.json else sweep.table(result, terminal_width()))
    crashed = [o.task for o in result.outcomes if o.state == sweep.CRASHED]
    if crashed:
        print(
            f"nova-audit hit a bug in {', '.join(crashed)}: the traceback is logged above; "
            f"please report it (exit {CRASH_EXIT_CODE})",
            file=sys.stderr,
        )
    return result.code


def _params(args: argparse.Namespace) -> dict[str, Any]:
    spec = task_spec(args.task)
    params = {k.name: getattr(args, k.name, None) for k in spec.param_knobs()}
    params["cells"] = _cells_given(args) or None
    return params


def _run(args: argparse.Namespace) -> int:
    if args.task == "all":
        return _run_all(args)
    cfg = registry.load_config(args.config_file)
    ctx = runner.open_context(task_spec(args.task).name, cfg, _params(args))
    try:
        report = runner.run_all(ctx)
    finally:
        ctx.engines.dispose()
    print(render.to_json(report) if args.json else render.table(report, width=terminal_width()))
    crashed = runner.crashes(report)
    if crashed:
        print(
            f"nova-audit hit a bug in {crashed} cell(s) or step(s): the traceback is logged "
            "above; please report it (exit 255)",
            file=sys.stderr,
        )
        return CRASH_EXIT_CODE
    return int(report.code)


def _cells(args: argparse.Namespace) -> int:
    from nova_audit_ops.clients.db import Engines, mask_url

    cfg = registry.load_config(args.config_file)
    engines = Engines(
        cfg.require_api_connection(),
        cfg.cell_connections,
        cfg.database_connection,
        account=cfg.database_account,
    )
    for cell in list_cells(engines.api):
        print(f"{cell.label:20} {cell.uuid}  {mask_url(engines.cell_url(cell))}")
    return int(Code.OK)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(message)s",
    )
    try:
        if args.command == "tasks":
            for name, spec in sorted(TASKS.items()):
                print(f"{name:28} {spec.summary}")
            return int(Code.OK)
        if args.command == "cells":
            return _cells(args)
        if args.command == "grants":
            return _grants(args)
        return _run(args)
    except NovaAuditError as exc:
        print(f"ERROR: {secrets.scrub(str(exc))}", file=sys.stderr)
        return int(Code.FAILURE)
    except runner.EXPECTED_FAILURES as exc:  # a database or service failed: not a crash
        print(f"ERROR: {runner.failure_message(exc)}", file=sys.stderr)
        return int(Code.FAILURE)
    except Exception:
        print(secrets.scrub(traceback.format_exc()), file=sys.stderr)
        return CRASH_EXIT_CODE


if __name__ == "__main__":
    sys.exit(main())
