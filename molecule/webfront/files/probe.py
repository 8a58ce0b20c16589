#!/usr/bin/python3
"""Client probes the webfront tests run from the client host (standard library only).

probe.py ws HOST SERVER_NAME PATH MESSAGE CAFILE [IDLE_SECONDS]
    Websocket handshake over TLS to HOST:443 with SNI and Host SERVER_NAME,
    optionally idle for a while, then one text message; prints JSON with the
    status, whether Sec-WebSocket-Accept is right, and the echoed message.
probe.py tls HOST SERVER_NAME VERSION
    Offers only that TLS version (1.0, 1.1, 1.2, 1.3; the client side allows
    old ones) and prints JSON with the negotiated version or the error.
"""

import base64
import hashlib
import json
import os
import socket
import ssl
import struct
import sys
import time

WEBSOCKET_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
VERSIONS = {
    "1.0": ssl.TLSVersion.TLSv1,
    "1.1": ssl.TLSVersion.TLSv1_1,
    "1.2": ssl.TLSVersion.TLSv1_2,
    "1.3": ssl.TLSVersion.TLSv1_3,
}


def read_exact(sock, size):
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise EOFError("connection closed")
        data += chunk
    return data


def websocket(host, server_name, path, message, cafile, idle=0.0):
    context = ssl.create_default_context(cafile=cafile)
    with socket.create_connection((host, 443), timeout=30) as raw, \
            context.wrap_socket(raw, server_hostname=server_name) as sock:
        key = base64.b64encode(os.urandom(16)).decode()
        sock.sendall((
            f"GET {path} HTTP/1.1\r\nHost: {server_name}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode())
        head = b""
        while b"\r\n\r\n" not in head:
            head += read_exact(sock, 1)
        lines = head.decode().split("\r\n")
        status = int(lines[0].split()[1])
        fields = (line.partition(":") for line in lines[1:] if line)
        headers = {name.strip().lower(): value.strip() for name, _, value in fields}
        expected = base64.b64encode(hashlib.sha1((key + WEBSOCKET_GUID).encode()).digest()).decode()
        result = {"status": status, "accept_ok": headers.get("sec-websocket-accept") == expected}
        if status != 101:
            return result
        time.sleep(idle)
        payload, mask = message.encode(), os.urandom(4)
        masked = bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))
        sock.sendall(struct.pack("!BB", 0x81, 0x80 | len(payload)) + mask + masked)
        try:
            first, second = read_exact(sock, 2)
            result["echo"] = read_exact(sock, second & 0x7F).decode()
        except (EOFError, ConnectionError, TimeoutError) as exc:
            result["error"] = f"{type(exc).__name__}: {exc}"
        return result


def tls(host, server_name, version):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    # Let the client offer old versions: a refusal then comes from the server.
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    context.minimum_version = context.maximum_version = VERSIONS[version]
    try:
        with socket.create_connection((host, 443), timeout=10) as raw, \
                context.wrap_socket(raw, server_hostname=server_name) as sock:
            return {"version": sock.version()}
    except (ssl.SSLError, ConnectionError) as exc:
        return {"error": str(exc)}


if __name__ == "__main__":
    if sys.argv[1] == "ws":
        idle = float(sys.argv[7]) if len(sys.argv) > 7 else 0.0
        print(json.dumps(websocket(*sys.argv[2:7], idle=idle)))
    else:
        print(json.dumps(tls(*sys.argv[2:5])))
