#!/opt/zuul/bin/python3
"""ZooKeeper probe for the molecule tests, run on zuul01 with Zuul's kazoo; prints one JSON object.

    zkprobe write HOST PATH VALUE      create or set a znode through HOST (TLS, client certificate)
    zkprobe read HOST PATH             read a znode through HOST
    zkprobe srvr HOST                  the "srvr" four-letter word over TLS (mode: leader/follower)
    zkprobe connect HOST PORT HOW      try a ZooKeeper session: HOW is tls, tls-no-cert, tls-other-ca or plain

Hosts are verified against the CA certificate by name; a session that cannot start within a few seconds
is reported as {"connected": false, "error": ...}. DEVINFRA_PKI_DIR names the pki role's directory
(tests/test_zookeeper.py passes it).
"""

import json
import os
import socket
import ssl
import sys

from kazoo.client import KazooClient

PKI = os.environ["DEVINFRA_PKI_DIR"]
PORT = 2281
CREDENTIALS = {
    "tls": {"certfile": f"{PKI}/host.crt", "keyfile": f"{PKI}/host.key"},
    "tls-no-cert": {},
    # A certificate and key the test makes with its own, other CA.
    "tls-other-ca": {"certfile": "/tmp/other-ca-client.crt", "keyfile": "/tmp/other-ca-client.key"},
}


def client(host, port=PORT, how="tls"):
    if how == "plain":
        return KazooClient(hosts=f"{host}:{port}", timeout=5)
    return KazooClient(hosts=f"{host}:{port}", timeout=5,
                       use_ssl=True, verify_certs=True, ca=f"{PKI}/ca.crt", **CREDENTIALS[how])


def session(host, port=PORT, how="tls"):
    zk = client(host, port, how)
    zk.start(timeout=8)
    return zk


def write(host, path, value):
    zk = session(host)
    try:
        zk.ensure_path(path.rsplit("/", 1)[0] or "/")
        if zk.exists(path):
            zk.set(path, value.encode())
        else:
            zk.create(path, value.encode())
        return {"written": value}
    finally:
        zk.stop()


def read(host, path):
    zk = session(host)
    try:
        zk.sync(path)
        data, _ = zk.get(path)
        return {"value": data.decode()}
    finally:
        zk.stop()


def srvr(host):
    """The srvr four-letter word over TLS, with the server's name and certificate checked."""
    context = ssl.create_default_context(cafile=f"{PKI}/ca.crt")
    context.load_cert_chain(f"{PKI}/host.crt", f"{PKI}/host.key")
    with socket.create_connection((host, PORT), timeout=10) as raw, \
            context.wrap_socket(raw, server_hostname=host) as tls:
        tls.sendall(b"srvr")
        chunks = []
        while chunk := tls.recv(8192):
            chunks.append(chunk)
    text = b"".join(chunks).decode()
    fields = dict(line.split(": ", 1) for line in text.splitlines() if ": " in line)
    return {"mode": fields.get("Mode"), "zxid": fields.get("Zxid"),
            "version": fields.get("Zookeeper version")}


def connect(host, port, how):
    try:
        zk = session(host, int(port), how)
    except Exception as exc:  # noqa: BLE001  (any failure to connect is the answer)
        return {"connected": False, "error": f"{type(exc).__name__}: {exc}"}
    zk.stop()
    return {"connected": True}


def main(argv):
    commands = {"write": write, "read": read, "srvr": srvr, "connect": connect}
    if len(argv) < 2 or argv[1] not in commands:
        sys.exit(__doc__)
    print(json.dumps(commands[argv[1]](*argv[2:])))


if __name__ == "__main__":
    main(sys.argv)
