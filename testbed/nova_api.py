"""The real nova-api (compute API) of a bed, for tasks that change Nova through its API.

Runs `nova.wsgi.osapi_compute` from the tool venv under gunicorn, on the bed's
nova.conf (API DB, cell1 as [database], `fake://` transport: the calls used here
need no RPC). Keystone does not run in the test bed, so the paste pipeline's
`authtoken keystonecontext` is replaced by testbed/tool/nova_api_auth.py: the
token `user:project` is an admin of that project. Neutron does not run either:
calls that need it (server detail listings) fail here, as they would in a cloud
without Neutron.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import requests

from testbed import gunicorn, placement
from testbed.state import TestBed
from testbed.tools import tool_env, tools_venv

TOOL_DIR = Path(__file__).resolve().parent / "tool"
TOKEN = "admin:admin"
VERSION_PATH = "/v2.1"


@dataclass(frozen=True)
class NovaAPI:
    pid: int
    url: str  # the versioned endpoint, …/v2.1
    marker: str


def _paste_ini() -> str:
    shipped = tools_venv() / "etc" / "nova" / "api-paste.ini"
    text = shipped.read_text().replace("authtoken keystonecontext", "testbedauth")
    return text + "\n[filter:testbedauth]\npaste.filter_factory = nova_api_auth:filter_factory\n"


def start(bed: TestBed) -> NovaAPI:
    """Start nova-api for `bed` on a free loopback port; stop it with `stop()`."""
    conf_dir = Path(bed.dir) / "nova-api"
    conf_dir.mkdir(exist_ok=True)
    (conf_dir / "api-paste.ini").write_text(_paste_ini())
    (conf_dir / "nova.conf").write_text(Path(bed.nova_conf_path).read_text())
    marker = f"{bed.prefix}-nova-api"
    log = conf_dir / "nova-api.log"
    env = tool_env({"OS_NOVA_CONFIG_DIR": str(conf_dir), "PYTHONPATH": str(TOOL_DIR)})
    proc, root = gunicorn.serve("nova_api_wsgi:application", marker, conf_dir, env, log)
    placement.wait_ready(root, proc, log, name="nova-api")
    return NovaAPI(proc.pid, root + VERSION_PATH, marker)


def stop(api: NovaAPI) -> bool:
    return placement.stop(api.pid, api.marker)


def get(api: NovaAPI, path: str, microversion: str = "2.53") -> dict:
    """A GET on the compute API as the admin, for tests."""
    response = requests.get(
        api.url + path,
        headers={"X-Auth-Token": TOKEN, "OpenStack-API-Version": f"compute {microversion}"},
        timeout=30,
    )
    response.raise_for_status()
    return dict(response.json())


def config_section(api: NovaAPI) -> dict[str, str]:
    """The nova-audit `[nova]` section that reaches this nova-api."""
    return {"auth_type": "admin_token", "endpoint": api.url, "token": TOKEN}
