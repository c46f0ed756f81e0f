"""A fault-injecting HTTP proxy: forwards to a real service, breaks every Nth request.

Put it in front of Placement (or any REST service of the bed) to see how the
code copes with a service that fails now and then: every `fail_every`-th
request is answered with `status` (500 by default, a JSON error body in
Placement's format, optional Retry-After) without reaching the service, and
every `reset_every`-th connection is reset (TCP RST) instead of answered, and
every `delay_every`-th request is held `delay` seconds before it is forwarded
(a client with a shorter timeout sees a read timeout, yet the request lands) or,
with `hold="answer"`, forwarded at once and its answer held (the request has
landed before the client gives up: what a retried write must cope with). All
other requests go to the target unchanged. Counting is over the proxy's life,
across threads. `error_format="openstack"` words the injected errors as Nova's
API and Cinder do ({"computeFault": {"code": 500, "message": ...}}).

    with FaultProxy(bed.placement_url, fail_every=3) as proxy:
        ... point [placement] endpoint at proxy.url ...
    proxy.requests, proxy.faults
"""

from __future__ import annotations

import http.client
import json
import socket
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
    "host",
}
FAULT_DETAIL = "fault injected by the test bed's fault proxy"
ERROR_FORMATS = ("placement", "openstack")
# The fault names Nova's and Cinder's WSGI layers give their error bodies.
OPENSTACK_FAULT_NAMES = {429: "overLimit", 503: "serviceUnavailable"}


class FaultProxy:
    """A threaded HTTP proxy on 127.0.0.1 that fails every Nth request on purpose."""

    def __init__(
        self,
        target: str,
        *,
        fail_every: int = 0,
        status: int = 500,
        retry_after: int | None = None,
        reset_every: int = 0,
        delay_every: int = 0,
        delay: float = 0.0,
        timeout: float = 60.0,
        hold: str = "request",
        error_format: str = "placement",
    ) -> None:
        parts = urlsplit(target)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"the fault proxy forwards to http:// URLs only, not {target!r}")
        self.target_host = parts.hostname
        self.target_port = parts.port or 80
        self.target_path = parts.path.rstrip("/")
        self.fail_every = fail_every
        self.status = status
        self.retry_after = retry_after
        self.reset_every = reset_every
        self.delay_every = delay_every
        self.delay = delay
        self.timeout = timeout
        if hold not in ("request", "answer") or error_format not in ERROR_FORMATS:
            raise ValueError(f"hold={hold!r}, error_format={error_format!r}: unknown")
        self.hold = hold
        self.error_format = error_format
        self.requests = 0  # requests received
        self.faults = 0  # answered with `status` by the proxy itself
        self.resets = 0  # connections reset instead of answered
        self.delays = 0  # requests held `delay` seconds before being forwarded
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The proxy's base URL (the target's path kept), for a client's endpoint option."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}{self.target_path}"

    def start(self) -> FaultProxy:
        """Serve in a daemon thread until stop()."""
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="fault-proxy", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the listening socket."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=10)
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def decide(self) -> str:
        """Count one request and say what to do with it: 'reset', 'fail', 'delay' or 'forward'."""
        with self._lock:
            self.requests += 1
            number = self.requests
            if self.reset_every and number % self.reset_every == 0:
                self.resets += 1
                return "reset"
            if self.fail_every and number % self.fail_every == 0:
                self.faults += 1
                return "fail"
            if self.delay_every and number % self.delay_every == 0:
                self.delays += 1
                return "delay"
            return "forward"

    def fault_body(self) -> bytes:
        """An error document in the target's format: Placement's, or Nova's and Cinder's."""
        title = http.client.responses.get(self.status, "Error")
        if self.error_format == "openstack":
            name = OPENSTACK_FAULT_NAMES.get(self.status, "computeFault")
            fault = {name: {"code": self.status, "message": f"{title}: {FAULT_DETAIL}"}}
            return json.dumps(fault).encode()
        error = {"status": self.status, "title": title, "detail": FAULT_DETAIL}
        return json.dumps({"errors": [error]}).encode()

    def forward(
        self, method: str, path: str, headers: dict[str, str], body: bytes | None
    ) -> tuple[int, str, list[tuple[str, str]], bytes]:
        """Send one request to the target; its status, reason, headers and body."""
        conn = http.client.HTTPConnection(self.target_host, self.target_port, timeout=self.timeout)
        try:
            headers = {**headers, "Host": f"{self.target_host}:{self.target_port}"}
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            return response.status, response.reason, response.getheaders(), response.read()
        finally:
            conn.close()


def _handler_for(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(_ProxyHandler):
        owner = proxy

    return Handler


class _ProxyHandler(BaseHTTPRequestHandler):
    """One request: reset, fail or forward it, as the proxy decides."""

    owner: FaultProxy
    protocol_version = "HTTP/1.1"

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        action = self.owner.decide()
        if action == "reset":
            self._reset()
        elif action == "fail":
            extra = []
            if self.owner.retry_after is not None:
                extra.append(("Retry-After", str(self.owner.retry_after)))
            self._answer(self.owner.status, extra, self.owner.fault_body())
        else:
            held = action == "delay"
            if held and self.owner.hold == "request":
                time.sleep(self.owner.delay)  # the client may time out; the request still lands
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
            status, reason, got, data = self.owner.forward(self.command, self.path, headers, body)
            if held and self.owner.hold == "answer":
                time.sleep(self.owner.delay)  # landed; the client may give up waiting
            kept = [(k, v) for k, v in got if k.lower() not in HOP_BY_HOP]
            try:
                self._answer(status, kept, data, reason)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True  # the client timed out and went away

    def _answer(
        self, status: int, headers: list[tuple[str, str]], body: bytes, reason: str | None = None
    ) -> None:
        self.send_response(status, reason)
        if not any(k.lower() == "content-type" for k, _ in headers):
            headers = [*headers, ("Content-Type", "application/json")]
        for key, value in headers:
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _reset(self) -> None:
        """Close the connection with a TCP RST (SO_LINGER 0), answering nothing."""
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        self.connection.close()

    do_GET = do_PUT = do_POST = do_DELETE = do_PATCH = do_HEAD = _handle

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the tests read the proxy's counters, not its access log."""
