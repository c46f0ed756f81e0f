"""Bring beds up, clone them per test, and take them down.

`up` builds every schema with Nova's and Placement's own migrations and commands:
`nova-manage api_db sync`, then `cell_v2 map_cell0` and `cell_v2 create_cell` per
cell; `nova-manage db sync --local_cell` for cell0 and each cell (per-cell
configs), side by side; `placement-manage db sync`, then the Placement server.
The nova-manage commands run forked from a warm zygote (forkserver.py: the same
`nova.cmd.manage:main` and argv as the console script, without paying Nova's
3.5 s import each time). Then the synthetic cloud is seeded (seed.py).

`clone` copies every database of a bed (MariaDB: server-side table copies;
SQLite: file copies) and repoints the copy's cell mappings; `reset` turns a used
clone back into a fresh copy by refilling only what changed.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from testbed import configs, forkserver, placement, services
from testbed.backends import get_backend, prefix_for
from testbed.db import connect
from testbed.errors import TestBedError
from testbed.seed import build_plan, formats_request, parse_formats, seed
from testbed.snapshot import snapshot_tables
from testbed.state import CELL0_UUID, STATE_FILE, Cell, TestBed, load, registry, unregister
from testbed.tools import run_tool, tool

DEFAULT_SEED = 42
FILES = (
    STATE_FILE,
    "nova.conf",
    "placement.conf",
    "nova-audit.conf",
    "placement.log",
    "timings.json",
    "seed-request.json",
)


def _transport_url(secret: str, prefix: str, cell: str) -> str:
    # Never connected to; it carries a password, like a real cell's RabbitMQ URL.
    return f"rabbit://nova:{secret}@127.0.0.1:5672/{prefix}_{cell}"


def up(
    directory: str | Path,
    backend: str = "mariadb",
    cells: int = 2,
    hosts_per_cell: int = 3,
    instances_per_cell: int = 20,
    seed_value: int = DEFAULT_SEED,
    anchor: dt.datetime | None = None,
    build_class: type[Build] | None = None,
) -> TestBed:
    """Build a bed in `directory` (replacing any bed there) and seed its cloud.

    `build_class` swaps how the schemas are made (scale_seed.py: one cell migrated,
    its schema cloned to the others).
    """
    if cells < 1 or hosts_per_cell < 1 or instances_per_cell < 0:
        raise TestBedError("need at least one cell, one host per cell and no negative counts")
    directory = Path(directory).resolve()
    if directory.exists():
        down(directory)
    directory.mkdir(parents=True, exist_ok=True)
    anchor = anchor or dt.datetime.now(dt.timezone.utc).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    build = (build_class or Build)(
        directory, backend, ["cell0", *(f"cell{i}" for i in range(1, cells + 1))]
    )
    plan = build_plan(build.names[1:], hosts_per_cell, instances_per_cell, seed_value, anchor)
    build.request_file.write_text(json.dumps(formats_request(plan)))
    bed = TestBed(
        dir=directory,
        backend=backend,
        prefix=build.prefix,
        api_url=build.api_url,
        cells=[],
        placement_url=None,
        placement_pid=None,
        placement_db_url=build.placement_db,
        config_path=directory / "nova-audit.conf",
        nova_conf_path=build.nova_conf,
        owns_placement=True,
        seed=seed_value,
        anchor=anchor.isoformat(),
    )
    build.start(bed)
    try:
        build.steps.wait()
        bed.cells = read_cells(build.api_url)
        write_configs(bed)
        bed.save()
        bed.counts = seed(bed, plan, parse_formats(build.formats_out[0]))
        build.mark("seed")
        bed.save()
    except BaseException:
        build.steps.wait(reraise=False)
        placement.stop(bed.placement_pid, build.prefix)
        raise
    (directory / "timings.json").write_text(json.dumps(build.timings, indent=2) + "\n")
    return bed


class Build:
    """One `up` under way: the bed's databases and config files, its setup chains, timings.

    Creating it creates the empty databases and writes nova.conf, placement.conf and
    one nova.conf per cell; `start` runs Nova's and Placement's own setup commands.
    """

    def __init__(self, directory: Path, backend: str, names: list[str]) -> None:
        self.started = time.monotonic()
        self.timings: dict[str, float] = {}
        self.steps = Steps()
        self.formats_out: list[str] = []
        self.directory = directory
        self.names = names
        store = get_backend(backend)
        self.prefix = prefix_for(directory)
        self.api_url = store.url(directory, self.prefix, "api")
        self.cell_urls = {name: store.url(directory, self.prefix, name) for name in names}
        self.placement_db = store.url(directory, self.prefix, "placement")
        store.create([self.api_url, *self.cell_urls.values(), self.placement_db])
        self.secret = sa.engine.make_url(self.api_url).password or self.prefix.split("_")[1]
        self.nova_conf = directory / "nova.conf"
        self.request_file = directory / "seed-request.json"
        state = directory / "state"
        configs.write(
            self.nova_conf, configs.nova_conf(self.api_url, self.cell_urls["cell1"], None, state)
        )
        configs.write(directory / "placement.conf", configs.placement_conf(self.placement_db))
        self.cell_confs = {
            name: configs.write(
                directory / "cells" / f"nova-{name}.conf",
                configs.nova_conf(self.api_url, url, None, state),
            )
            for name, url in self.cell_urls.items()
        }
        self.mark("create")

    def mark(self, step: str) -> None:
        """Record how long after the start `step` was done."""
        self.timings[step] = time.monotonic() - self.started

    def start(self, bed: TestBed) -> None:
        """Start the setup chains: Placement, the API DB (then Nova's formats), each cell DB."""
        self.steps.chain(self.placement_chain, bed)
        forkserver.zygote()  # Nova's import, once, while Placement starts
        self.mark("zygote")
        self.steps.chain(self.api_chain)
        for name in self.names:
            self.steps.chain(self.cell_chain, name)

    def manage(self, what: str, conf: Path, *args: str) -> str:
        """Run nova-manage from the zygote; its stdout, or a TestBedError."""
        return self.steps.check(what, forkserver.nova_manage(conf, *args))

    def api_chain(self) -> None:
        """The API schema, cell0 and the cells mapped, then Nova's formats."""
        # Everything that needs only the API schema follows as soon as it exists, in
        # order: cell_mappings ids are cell0=1, cell1=2, ...; then flavors, aggregates.
        self.manage("nova-manage api_db sync", self.nova_conf, "api_db", "sync")
        self.manage(
            "nova-manage cell_v2 map_cell0",
            self.nova_conf,
            "cell_v2",
            "map_cell0",
            "--database_connection",
            self.cell_urls["cell0"],
        )
        for name in self.names[1:]:
            self.manage(
                f"nova-manage cell_v2 create_cell --name {name}",
                self.nova_conf,
                "cell_v2",
                "create_cell",
                "--name",
                name,
                "--database_connection",
                self.cell_urls[name],
                "--transport-url",
                _transport_url(self.secret, self.prefix, name),
            )
        self.mark("api")
        # Not concurrently with the commands above: two writers on one SQLite file
        # can deadlock ("database is locked"), and ids stay deterministic.
        self.formats_chain()

    def formats_chain(self) -> None:
        """Flavors and aggregates created, and the plan's rows serialized, by Nova itself."""
        result = forkserver.script(
            "nova_formats.py",
            "--config-file",
            str(self.nova_conf),
            "--request",
            str(self.request_file),
        )
        self.formats_out.append(self.steps.check("nova_formats.py", result))
        self.mark("formats")

    def placement_chain(self, bed: TestBed) -> None:
        """Placement's schema, then its server (recorded in the bed at once)."""
        conf = str(self.directory / "placement.conf")
        self.steps.check(
            "placement-manage db sync",
            run_tool([tool("placement-manage"), "--config-file", conf, "db", "sync"], check=False),
        )
        bed.placement_pid, bed.placement_url = placement.start(self.directory, self.prefix)
        bed.save()  # from here on, `down` can stop Placement
        self.mark("placement")

    def cell_chain(self, name: str) -> None:
        """One cell's schema."""
        self.manage(
            f"nova-manage db sync ({name})", self.cell_confs[name], "db", "sync", "--local_cell"
        )
        self.mark(f"sync_{name}")


class Steps:
    """Chains of setup steps, each chain in its own thread; errors are collected."""

    def __init__(self) -> None:
        self.threads: list[threading.Thread] = []
        self.errors: list[BaseException] = []
        self.lock = threading.Lock()

    def check(self, what: str, result: subprocess.CompletedProcess[str]) -> str:
        if result.returncode != 0:
            raise TestBedError(
                f"{what} exited {result.returncode}:\n{result.stdout[-3000:]}\n"
                f"{result.stderr[-3000:]}"
            )
        return str(result.stdout)

    def chain(self, fn: Callable[..., None], *args: Any) -> None:
        def body() -> None:
            try:
                if not self.errors:
                    fn(*args)
            except BaseException as exc:
                with self.lock:
                    self.errors.append(exc)

        thread = threading.Thread(target=body, daemon=True)
        with self.lock:
            self.threads.append(thread)
        thread.start()

    def wait(self, reraise: bool = True) -> None:
        while True:
            with self.lock:
                pending = [t for t in self.threads if t.is_alive()]
            if not pending:
                break
            for thread in pending:
                thread.join()
        if self.errors and reraise:
            raise self.errors[0]


def read_cells(api_url: str) -> list[Cell]:
    """The cell mappings, cell0 first, then by name."""
    with connect(api_url) as conn:
        rows = conn.execute(
            sa.text("SELECT name, uuid, database_connection FROM cell_mappings")
        ).all()
    cells = [Cell(r.name, r.uuid, r.database_connection) for r in rows]
    return sorted(cells, key=lambda c: (c.uuid != CELL0_UUID, len(c.name or ""), c.name or ""))


def write_configs(bed: TestBed) -> None:
    """nova.conf and nova-audit.conf for the bed's current URLs and Placement."""
    cell1 = bed.compute_cells[0].url
    state = bed.dir / "state"
    configs.write(
        bed.nova_conf_path, configs.nova_conf(bed.api_url, cell1, bed.placement_url, state)
    )
    configs.write(bed.config_path, configs.audit_conf(bed.api_url, bed.placement_url, state))


def down(directory: str | Path) -> list[str]:
    """Stop what `up`/`clone` started and drop every database and file they made."""
    directory = Path(directory).resolve()
    removed: list[str] = []
    backend = "mariadb"
    try:
        bed = load(directory)
    except (TestBedError, ValueError, TypeError, KeyError):
        bed = None
    prefix = prefix_for(directory)
    if bed is not None:
        backend = bed.backend
        removed += services.stop(bed)
        if bed.owns_placement and placement.stop(bed.placement_pid, bed.prefix):
            removed.append(f"placement pid {bed.placement_pid}")
    if backend == "mariadb":
        try:
            removed += get_backend("mariadb").drop(directory, prefix)
        except TestBedError:
            if bed is not None:
                raise  # a MariaDB bed whose databases cannot be dropped: say so
    removed += get_backend("sqlite").drop(directory, prefix)
    for name in FILES:
        path = directory / name
        if path.exists():
            path.unlink()
            removed.append(str(path))
    # nova-audit's named locks on a SQLite bed are files beside its API database.
    for lock in sorted(directory.glob(".nova_audit.*.lock")):
        lock.unlink()
        removed.append(str(lock))
    unregister(prefix)
    for sub in ("cells", "state", "nova-api", "cinder"):
        if (directory / sub).exists():
            shutil.rmtree(directory / sub, ignore_errors=True)
            removed.append(str(directory / sub))
    with contextlib.suppress(OSError):
        directory.rmdir()  # only if nothing else lives there
    return removed


def _role(name: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in name.lower())


def clone(src: TestBed, dst_dir: str | Path, with_placement: bool = False) -> TestBed:
    """An independent copy of `src` in `dst_dir`: every database copied, cells repointed.

    Without `with_placement` the copy shares the source's Placement (use it read-only:
    drift scenarios that write to Placement refuse to run on such a bed). With it, the
    Placement database is copied too and the copy gets its own Placement server.
    """
    directory = Path(dst_dir).resolve()
    if directory == src.dir:
        raise TestBedError("clone needs a different directory than its source")
    if directory.exists():
        down(directory)
    directory.mkdir(parents=True, exist_ok=True)
    store = get_backend(src.backend)
    prefix = prefix_for(directory)
    api_url = store.url(directory, prefix, "api")
    cells = [Cell(c.name, c.uuid, store.url(directory, prefix, _role(c.name))) for c in src.cells]
    pairs = [(src.api_url, api_url)] + [
        (old.url, new.url) for old, new in zip(src.cells, cells, strict=True)
    ]
    placement_db = store.url(directory, prefix, "placement")
    if with_placement:
        pairs.append((src.placement_db_url, placement_db))
    store.copy(pairs)
    with connect(api_url) as conn:
        for cell in cells:
            conn.execute(
                sa.text("UPDATE cell_mappings SET database_connection = :url WHERE uuid = :uuid"),
                {"url": cell.url, "uuid": cell.uuid},
            )
    bed = TestBed(
        dir=directory,
        backend=src.backend,
        prefix=prefix,
        api_url=api_url,
        cells=cells,
        placement_url=src.placement_url,
        placement_pid=None,
        placement_db_url=placement_db if with_placement else src.placement_db_url,
        config_path=directory / "nova-audit.conf",
        nova_conf_path=directory / "nova.conf",
        owns_placement=with_placement,
        source=str(src.dir),
        seed=src.seed,
        anchor=src.anchor,
        counts=dict(src.counts),
    )
    bed.save()
    if with_placement:
        configs.write(directory / "placement.conf", configs.placement_conf(placement_db))
        try:
            bed.placement_pid, bed.placement_url = placement.start(directory, prefix)
        except BaseException:
            down(directory)
            raise
    write_configs(bed)
    bed.save()
    return bed


def reset(bed: TestBed, src: TestBed) -> TestBed:
    """Make `bed`, an earlier `clone(src, ...)`, an exact fresh copy of `src` again.

    Much cheaper than down + clone on MariaDB (only tables a test changed are
    refilled), so fixtures recycle one clone across tests. The bed keeps its
    directory, database names and cells; its config files and CLI state are
    rewritten. A bed with its own Placement gets its Placement DB refreshed; its
    server is restarted only if a table Placement caches in memory (resource
    classes, traits, consumer types) changed, or if it is not running.
    """
    if bed.backend != src.backend or [c.uuid for c in bed.cells] != [c.uuid for c in src.cells]:
        return clone(src, bed.dir, with_placement=bed.owns_placement)
    bed.dir.mkdir(parents=True, exist_ok=True)
    store = get_backend(bed.backend)
    pairs = [(src.api_url, bed.api_url)] + [
        (old.url, new.url) for old, new in zip(src.cells, bed.cells, strict=True)
    ]
    restart = False
    if bed.owns_placement:
        restart = (
            bed.backend != "mariadb"
            or not placement.is_ours(bed.placement_pid or 0, bed.prefix)
            or placement_caches(src.placement_db_url) != placement_caches(bed.placement_db_url)
        )
        if restart:
            placement.stop(bed.placement_pid, bed.prefix)
        pairs.append((src.placement_db_url, bed.placement_db_url))
    store.refresh(pairs)
    with connect(bed.api_url) as conn:
        for cell in bed.cells:
            conn.execute(
                sa.text("UPDATE cell_mappings SET database_connection = :url WHERE uuid = :uuid"),
                {"url": cell.url, "uuid": cell.uuid},
            )
    shutil.rmtree(bed.dir / "state", ignore_errors=True)
    if bed.owns_placement:
        if restart:
            configs.write(bed.dir / "placement.conf", configs.placement_conf(bed.placement_db_url))
            bed.placement_pid, bed.placement_url = placement.start(bed.dir, bed.prefix)
    else:
        bed.placement_url = src.placement_url
    bed.counts = dict(src.counts)
    write_configs(bed)
    bed.save()
    return bed


PLACEMENT_CACHED_TABLES = ("resource_classes", "traits", "consumer_types")


def placement_caches(url: str) -> dict[str, str]:
    """Fingerprints of the tables a running Placement keeps cached."""
    shot = snapshot_tables(url)
    return {t: shot.get(t, "") for t in PLACEMENT_CACHED_TABLES}


def gc() -> list[str]:
    """Take down beds whose directory is gone (a killed test session leaves them behind).

    Their Placement servers are found by the bed's name on the gunicorn command line.
    """
    removed = []
    for entry in sorted(registry().glob("*.json")):
        info = json.loads(entry.read_text())
        directory = Path(info["dir"])
        if (directory / STATE_FILE).exists():
            continue
        prefix = entry.stem
        for pid in placement.find(prefix):
            placement.stop(pid, prefix)
            removed.append(f"placement pid {pid}")
        if info.get("backend") == "mariadb":
            removed += get_backend("mariadb").drop(directory, prefix)
        entry.unlink(missing_ok=True)
    return removed
