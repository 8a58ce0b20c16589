"""Test backend for the webfront scenario: plain HTTP plus a websocket echo.

Standard library only (the handshake and framing of RFC 6455 by hand), so
the test host needs no package. Listens on 127.0.0.1:8081:

- GET /slow          answers after 4 s (longer than the proxy's read timeout)
- GET /ws/...        websocket: echoes every text or binary message as "echo: <msg>"
- GET or POST /...   "backend host=<Host> proto=<X-Forwarded-Proto> for=<X-Forwarded-For>
                      path=<path> body=<length>"
"""

import base64
import hashlib
import struct
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

WEBSOCKET_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def read_exact(stream, size):
    data = stream.read(size)
    if len(data) < size:
        raise EOFError
    return data


def read_frame(stream):
    first, second = read_exact(stream, 2)
    opcode, length = first & 0x0F, second & 0x7F
    if length == 126:
        length = struct.unpack("!H", read_exact(stream, 2))[0]
    elif length == 127:
        length = struct.unpack("!Q", read_exact(stream, 8))[0]
    mask = read_exact(stream, 4) if second & 0x80 else b""
    payload = read_exact(stream, length)
    if mask:
        payload = bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))
    return opcode, payload


def write_frame(stream, opcode, payload):
    size = len(payload)
    if size < 126:
        header = struct.pack("!BB", 0x80 | opcode, size)
    elif size < 65536:
        header = struct.pack("!BBH", 0x80 | opcode, 126, size)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 127, size)
    stream.write(header + payload)
    stream.flush()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):  # noqa: N802 - http.server's naming
        if self.headers.get("Upgrade", "").lower() == "websocket":
            self.websocket()
        elif self.path == "/slow":
            time.sleep(4)
            self.answer()
        else:
            self.answer()

    def do_POST(self):  # noqa: N802
        self.answer(len(self.rfile.read(int(self.headers.get("Content-Length", "0")))))

    def answer(self, body_length=0):
        body = (
            f"backend host={self.headers.get('Host')} proto={self.headers.get('X-Forwarded-Proto')} "
            f"for={self.headers.get('X-Forwarded-For')} path={self.path} body={body_length}\n"
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        # The proxy must hide this one and send its own.
        self.send_header("X-Frame-Options", "ALLOWALL")
        self.end_headers()
        self.wfile.write(body)

    def websocket(self):
        key = self.headers["Sec-WebSocket-Key"]
        accept = base64.b64encode(hashlib.sha1((key + WEBSOCKET_GUID).encode()).digest()).decode()
        self.send_response(101, "Switching Protocols")
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept)
        self.end_headers()
        self.wfile.flush()
        self.close_connection = True
        try:
            while True:
                opcode, payload = read_frame(self.rfile)
                if opcode == 0x8:  # close
                    write_frame(self.wfile, 0x8, payload[:2])
                    return
                if opcode == 0x9:  # ping
                    write_frame(self.wfile, 0xA, payload)
                elif opcode in (0x1, 0x2):
                    write_frame(self.wfile, opcode, b"echo: " + payload)
        except (EOFError, ConnectionError):
            return


if __name__ == "__main__":
    ThreadingHTTPServer(("127.0.0.1", 8081), Handler).serve_forever()
