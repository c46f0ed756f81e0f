"""Fixtures of the task tests that talk to the real nova-api (host_fault's tests).

`config` here is the bed's config with a `[nova]` section; a module that needs
another config (volume_attachments: Cinder's) defines its own, which wins.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from testbed import nova_api
from tests import support


@pytest.fixture
def api(nova_bed: Any) -> Iterator[nova_api.NovaAPI]:
    started = nova_api.start(nova_bed)
    try:
        yield started
    finally:
        nova_api.stop(started)


@pytest.fixture
def config(nova_bed: Any, api: nova_api.NovaAPI, tmp_path: Path) -> str:
    return support.config_with(nova_bed, tmp_path, nova=nova_api.config_section(api))
