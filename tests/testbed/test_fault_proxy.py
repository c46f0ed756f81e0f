"""The fault proxy forwards faithfully and breaks exactly the requests it is told to."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

from testbed.fault_proxy import FAULT_DETAIL, FaultProxy


class Echo(BaseHTTPRequestHandler):
    """Answers 201 with the method, path and body it received."""

    protocol_version = "HTTP/1.1"

    def _echo(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.dumps(
            {
                "method": self.command,
                "path": self.path,
                "body": self.rfile.read(length).decode(),
                "microversion": self.headers.get("OpenStack-API-Version"),
            }
        ).encode()
        self.send_response(201)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Echo", "yes")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_PUT = do_POST = do_DELETE = _echo

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


@pytest.fixture
def target() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/placement"
    finally:
        server.shutdown()
        server.server_close()


def test_forwards_method_path_body_and_headers(target: str) -> None:
    with FaultProxy(target) as proxy, requests.Session() as session:
        response = session.put(
            f"{proxy.url}/allocations/x?a=1",
            json={"k": 1},
            headers={"OpenStack-API-Version": "placement 1.28"},
            timeout=5,
        )
    assert response.status_code == 201 and response.headers["X-Echo"] == "yes"
    assert response.json() == {
        "method": "PUT",
        "path": "/placement/allocations/x?a=1",
        "body": '{"k": 1}',
        "microversion": "placement 1.28",
    }
    assert (proxy.requests, proxy.faults, proxy.resets) == (1, 0, 0)


def test_every_nth_request_fails_with_status_and_retry_after(target: str) -> None:
    with (
        FaultProxy(target, fail_every=3, status=503, retry_after=2) as proxy,
        requests.Session() as session,
    ):
        answers = [session.get(f"{proxy.url}/r", timeout=5) for _ in range(7)]
    assert [a.status_code for a in answers] == [201, 201, 503, 201, 201, 503, 201]
    assert answers[2].headers["Retry-After"] == "2"
    assert answers[2].json()["errors"][0] == {
        "status": 503,
        "title": "Service Unavailable",
        "detail": FAULT_DETAIL,
    }
    assert (proxy.requests, proxy.faults) == (7, 2)


def test_every_nth_connection_is_reset(target: str) -> None:
    with FaultProxy(target, reset_every=2) as proxy, requests.Session() as session:
        assert session.get(f"{proxy.url}/r", timeout=5).status_code == 201
        with pytest.raises(requests.ConnectionError):
            session.get(f"{proxy.url}/r", timeout=5)
        assert session.get(f"{proxy.url}/r", timeout=5).status_code == 201
    assert proxy.resets == 1


def test_only_plain_http_targets() -> None:
    with pytest.raises(ValueError, match="http://"):
        FaultProxy("https://placement.example")
