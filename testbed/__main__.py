"""`python -m testbed`: bring beds up and down, clone them, inject drift, run nova-manage.

python -m testbed up --backend sqlite --dir .demo/bed      # last stdout line: config path
python -m testbed up --backend sqlite --dir .demo/bed --with-apis   # + nova-api, Cinder
python -m testbed drift unmapped_hosts --dir .demo/bed --count 2 [--json]
python -m testbed nova-manage --dir .demo/bed cell_v2 discover_hosts --verbose
python -m testbed down --dir .demo/bed
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy.engine import make_url

from testbed import services
from testbed.bed import DEFAULT_SEED, clone, down, gc, up
from testbed.drift import SCENARIOS, drift
from testbed.errors import TestBedError
from testbed.manage import nova_manage_command
from testbed.state import TestBed, load
from testbed.tools import ensure_bytecode, tool_env


def _masked(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def _describe(bed: TestBed) -> list[str]:
    lines = [f"backend: {bed.backend}", f"api: {_masked(bed.api_url)}"]
    lines += [f"{c.name}: {c.uuid} {_masked(c.url)}" for c in bed.cells]
    owner = "own" if bed.owns_placement else "shared"
    lines.append(f"placement: {bed.placement_url} ({owner}, pid {bed.placement_pid})")
    lines.append(f"nova.conf: {bed.nova_conf_path}")
    return lines


def _with_apis(bed: TestBed) -> list[str]:
    """Start nova-api and Cinder; a bed whose services failed to start is taken down."""
    try:
        return services.start(bed)
    except BaseException:
        down(bed.dir)
        raise


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python -m testbed", description=__doc__.splitlines()[0])
    sub = top.add_subparsers(dest="command", required=True)

    p = sub.add_parser("up", help="build and seed a bed (replaces any bed in DIR)")
    p.add_argument("--backend", choices=["sqlite", "mariadb"], required=True)
    p.add_argument("--dir", required=True, type=Path)
    p.add_argument("--cells", type=int, default=2)
    p.add_argument("--hosts-per-cell", type=int, default=3)
    p.add_argument("--instances-per-cell", type=int, default=20)
    p.add_argument("--seed", type=int, default=DEFAULT_SEED)
    p.add_argument(
        "--with-apis",
        action="store_true",
        help="also run the real nova-api and Cinder (needs RabbitMQ) and put their "
        "[nova] and [cinder] sections in the config",
    )

    p = sub.add_parser(
        "down", help="stop Placement (and the APIs), drop the databases, delete the files"
    )
    p.add_argument("--dir", required=True, type=Path)

    p = sub.add_parser("clone", help="copy the bed in --from into --dir")
    p.add_argument("--from", dest="source", required=True, type=Path)
    p.add_argument("--dir", required=True, type=Path)
    p.add_argument("--with-placement", action="store_true")

    p = sub.add_parser("drift", help="inject one kind of inconsistency")
    p.add_argument("scenario", choices=sorted(SCENARIOS))
    p.add_argument("--dir", required=True, type=Path)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--json", action="store_true", help="print the changes as a JSON list")

    p = sub.add_parser("nova-manage", help="run the real nova-manage with the bed's nova.conf")
    p.add_argument("--dir", required=True, type=Path)
    p.add_argument("args", nargs=argparse.REMAINDER)

    sub.add_parser("gc", help="take down beds whose directory was deleted (crashed sessions)")

    p = sub.add_parser("show", help="print the bed's testbed.json")
    p.add_argument("--dir", required=True, type=Path)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        if args.command == "up":
            started = time.monotonic()
            bed = up(
                args.dir,
                backend=args.backend,
                cells=args.cells,
                hosts_per_cell=args.hosts_per_cell,
                instances_per_cell=args.instances_per_cell,
                seed_value=args.seed,
            )
            print("\n".join(_describe(bed)))
            if args.with_apis:
                print("\n".join(_with_apis(bed)))
            print(f"up in {time.monotonic() - started:.1f}s")
            print(bed.config_path)
        elif args.command == "down":
            for item in down(args.dir):
                print(f"removed {item}")
        elif args.command == "clone":
            bed = clone(load(args.source), args.dir, with_placement=args.with_placement)
            print("\n".join(_describe(bed)))
            print(bed.config_path)
        elif args.command == "drift":
            changes = drift(load(args.dir), args.scenario, args.count)
            if args.json:
                print(json.dumps(changes, indent=2))
            else:
                for change in changes:
                    rest = " ".join(f"{k}={v}" for k, v in change.items() if k != "scenario")
                    print(f"{change['scenario']} {rest}")
        elif args.command == "nova-manage":
            ensure_bytecode()
            command = nova_manage_command(load(args.dir), *args.args)
            return subprocess.run(command, env=tool_env(), check=False).returncode
        elif args.command == "gc":
            for item in gc():
                print(f"removed {item}")
        elif args.command == "show":
            print((load(args.dir).dir / "testbed.json").read_text(), end="")
    except TestBedError as exc:
        print(f"testbed: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
