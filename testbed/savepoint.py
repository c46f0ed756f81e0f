"""Save a bed's whole state once, restore it many times, without a second Placement server.

    saved = save(bed, tmp / "saved")   # every Nova database and the Placement DB copied
    restore(bed, saved)                # ~0.3 s: only the tables that changed are refilled
    ...
    drop(saved)

`save` is `clone` without a server: the copy's Placement *database* is copied
too, but no Placement runs on it (a second gunicorn costs ~1.5 s and memory).
`restore` is `reset` of the live bed from that copy, so the live bed keeps its
own Placement server (restarted only if a table Placement caches changed) and
its state directory (the CLI's resume markers) is emptied.
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

from testbed.backends import get_backend, prefix_for
from testbed.bed import clone, down, reset
from testbed.state import TestBed

STATE_DIR = "state"  # [audit] state_dir of the bed's nova-audit.conf (bed.write_configs)


def save(bed: TestBed, directory: str | Path) -> TestBed:
    """A frozen copy of `bed` (Nova databases and Placement DB) in `directory`."""
    saved = clone(bed, directory, with_placement=False)
    store = get_backend(bed.backend)
    placement_db = store.url(saved.dir, prefix_for(saved.dir), "placement")
    store.copy([(bed.placement_db_url, placement_db)])
    saved = replace(saved, placement_db_url=placement_db, placement_url=None, owns_placement=False)
    saved.save()
    _copy_state(bed.dir, saved.dir)
    return saved


def restore(bed: TestBed, saved: TestBed) -> TestBed:
    """Make `bed` equal to `saved` again: databases, Placement DB, state directory."""
    bed = reset(bed, saved)
    _copy_state(saved.dir, bed.dir)
    return bed


def _copy_state(src: Path, dst: Path) -> None:
    """The CLI's state directory (resume markers, sightings) of `src` replaces `dst`'s."""
    shutil.rmtree(dst / STATE_DIR, ignore_errors=True)
    if (src / STATE_DIR).exists():
        shutil.copytree(src / STATE_DIR, dst / STATE_DIR)


def drop(saved: TestBed) -> None:
    """Remove a saved copy's databases and files."""
    down(saved.dir)
