"""HTTP/1.1 plumbing shared by the test doubles on 127.0.0.1.

tests/fake_openstack and tests/gerrit_double each answer requests with a
responder ``(method, target, headers, raw body) -> (status, body bytes,
headers)``; this module serves such a responder in a background thread.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
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
