"""HTTP/1.1 plumbing shared by the test doubles on 127.0.0.1.

tests/fake_openstack and tests/gerrit_double each answer requests with a
responder ``(method, target, headers, raw body) -> (status, body bytes,
headers)``; this module serves such a responder in a background thread.
FaultInjection gives a double ``fail()``: HTTP errors for chosen requests.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from email.message import Message
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

Responder = Callable[[str, str, Message, bytes], tuple[int, bytes, dict[str, str]]]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    responder: Responder


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real API servers do
    server: _Server

    def _dispatch(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        status, data, headers = self.server.responder(self.command, self.path, self.headers, raw)
        try:
            self.send_response(status, HTTPStatus(status).phrase)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (e.g. its timeout)
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_DELETE = _dispatch

    def log_message(self, format, *args) -> None:
        """Quiet: each double keeps its own request log."""


def serve(responder: Responder, port: int = 0, name: str = "test-double") -> ThreadingHTTPServer:
    """Serve ``responder`` on 127.0.0.1:port (0: any free port) until shutdown()."""
    httpd = _Server(("127.0.0.1", port), _Handler)
    httpd.responder = responder
    threading.Thread(target=httpd.serve_forever, name=name, daemon=True).start()
    return httpd


class LoopbackService:
    """Start/stop and context-manager lifecycle of a test double.

    A subclass sets ``port`` and ``thread_name`` and implements ``respond``
    (a Responder); ``url`` is its base URL once started.
    """

    port: int = 0
    thread_name: str = "test-double"
    url: str = ""
    _httpd: ThreadingHTTPServer | None = None

    def respond(self, method: str, target: str, headers: Message, raw: bytes) -> tuple[int, bytes, dict]:
        raise NotImplementedError

    def start(self) -> str:
        """Serve in a background thread; return the base URL."""
        self._httpd = serve(self.respond, self.port, self.thread_name)
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        return self.url

    def stop(self) -> None:
        if self._httpd:
            self._httpd.shutdown()
            self._httpd.server_close()

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


@dataclass
class Fault:
    """The next ``times`` requests (None: all) whose path contains ``path``, and whose method is
    ``method`` if it is given, get HTTP ``status``."""

    path: str
    status: int
    times: int | None = 1
    method: str | None = None


class FaultInjection:
    """``fail()`` for a double, which answers the Fault ``take_fault()`` returns for each request.

    The faults are tried in the order they were added. A double may extend Fault with fields of its
    own (``fault_class``); fail() takes them as keyword arguments. Its __init__ calls this one.
    """

    fault_class: type[Fault] = Fault

    def __init__(self) -> None:
        self.faults: list[Fault] = []
        self._faults_lock = threading.Lock()

    def fail(self, path: str, status: int = 500, times: int | None = 1, method: str | None = None,
             **details) -> None:
        """Answer HTTP ``status`` to the next ``times`` requests (None: all) whose path contains ``path``."""
        with self._faults_lock:
            self.faults.append(self.fault_class(path, status, times, method, **details))

    def take_fault(self, method: str, path: str) -> Fault | None:
        """The first fault for this request that has requests left, counting this one; else None."""
        with self._faults_lock:
            for fault in self.faults:
                if fault.path in path and fault.method in (None, method) and fault.times != 0:
                    if fault.times is not None:
                        fault.times -= 1
                    return fault
        return None
