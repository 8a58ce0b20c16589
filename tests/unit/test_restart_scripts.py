"""The rolling-restart scripts the zookeeper and zuul roles' handlers run (one host at a time).

roles/zookeeper/files/zookeeper-restart talks TLS with a client certificate
to a stand-in server here (the real ensemble is molecule/zuul's);
roles/zuul/files/zuul-restart drives a stand-in systemctl that records what
it was asked.
"""

import datetime
import importlib.machinery
import importlib.util
import json
import os
import socket
import ssl
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

ROOT = Path(__file__).resolve().parents[2]
ZOOKEEPER_RESTART = ROOT / "roles" / "zookeeper" / "files" / "zookeeper-restart"
ZUUL_RESTART = ROOT / "roles" / "zuul" / "files" / "zuul-restart"


def load(path):
    loader = importlib.machinery.SourceFileLoader(path.name.replace("-", "_"), str(path))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


zk = load(ZOOKEEPER_RESTART)


# --- zookeeper-restart ------------------------------------------------------------------------------

SRVR_FOLLOWER = ("Zookeeper version: 3.9.3\nLatency min/avg/max: 0/0.0/0\nReceived: 3\nSent: 2\n"
                 "Connections: 1\nOutstanding: 0\nZxid: 0x100000002\nMode: follower\nNode count: 5\n")


def test_srvr_mode_is_read_from_the_answer():
    assert zk.parse_srvr(SRVR_FOLLOWER) == "follower"
    assert zk.parse_srvr("Mode: leader\n") == "leader"
    assert zk.parse_srvr("This ZooKeeper instance is not currently serving requests\n") is None
    assert zk.parse_srvr("") is None


def test_wait_for_mode_polls_until_an_expected_mode():
    answers = iter([(None, "refused"), ("looking", "x"), ("follower", "x")])
    clock = iter(range(100))
    found, _, elapsed = zk.wait_for_mode({"leader", "follower"}, 60, lambda: next(answers),
                                         sleep=lambda s: None, clock=lambda: next(clock))
    assert found == "follower" and elapsed == 3


def test_wait_for_mode_gives_up_after_the_timeout():
    clock = iter(range(0, 1000, 10))
    found, detail, elapsed = zk.wait_for_mode({"follower"}, 30, lambda: ("looking", "Mode: looking"),
                                              sleep=lambda s: None, clock=lambda: next(clock))
    assert found == "looking" and elapsed >= 30


def make_pki(directory):
    """A CA, a server certificate and a client bundle (key then certificate, as the pki role's)."""
    now = datetime.datetime.now(datetime.UTC)

    def cert(subject, issuer, key, signer, ca=False):
        # The extensions Python 3.13's strict verification (VERIFY_X509_STRICT) requires.
        builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(minutes=1))
                   .not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
                   .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()),
                                  critical=False)
                   .add_extension(x509.KeyUsage(
                       digital_signature=not ca, content_commitment=False, key_encipherment=False,
                       data_encipherment=False, key_agreement=False, key_cert_sign=ca, crl_sign=ca,
                       encipher_only=False, decipher_only=False), critical=True))
        if not ca:
            usages = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            names = [x509.DNSName("localhost")]
            builder = (builder
                       .add_extension(x509.SubjectAlternativeName(names), critical=False)
                       .add_extension(x509.ExtendedKeyUsage(usages), critical=False))
        return builder.sign(signer, hashes.SHA256())

    def name(text):
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, text)])

    def pem_key(key):
        return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = cert(name("test CA"), name("test CA"), ca_key, ca_key, ca=True)
    files = {role: directory / f"{role}.pem" for role in ("ca", "server", "client")}
    files["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    for role in ("server", "client"):
        key = ec.generate_private_key(ec.SECP256R1())
        files[role].write_bytes(pem_key(key) + cert(name(role), name("test CA"), key, ca_key)
                                .public_bytes(serialization.Encoding.PEM))
    return files


@pytest.fixture
def zk_server(tmp_path):
    """A TLS server that wants a client certificate and answers srvr like ZooKeeper (answer settable)."""
    files = make_pki(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(files["ca"]))
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_cert_chain(str(files["server"]))
    listener = socket.create_server(("127.0.0.1", 0))
    state = {"answer": SRVR_FOLLOWER, "asked": [], "stop": False}

    def serve():
        listener.settimeout(0.2)
        while not state["stop"]:
            try:
                raw, _ = listener.accept()
            except TimeoutError:
                continue
            try:
                with context.wrap_socket(raw, server_side=True) as tls:
                    state["asked"].append(tls.recv(4))
                    tls.sendall(state["answer"].encode())
            except (ssl.SSLError, OSError):
                raw.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield state, listener.getsockname()[1], files
    state["stop"] = True
    thread.join()
    listener.close()


def run_zookeeper_restart(port, files, *extra):
    return subprocess.run(
        [sys.executable, str(ZOOKEEPER_RESTART), "--no-restart", "--port", str(port),
         "--keystore", str(files["client"]), "--ca", str(files["ca"]), *extra],
        capture_output=True, text=True, timeout=60)


def test_a_server_that_follows_is_serving(zk_server):
    state, port, files = zk_server
    run = run_zookeeper_restart(port, files, "--expect", "leader,follower", "--timeout", "10")
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["mode"] == "follower"
    assert state["asked"] == [b"srvr"]


def test_a_server_still_electing_fails_after_the_timeout_and_says_why(zk_server):
    state, port, files = zk_server
    state["answer"] = "Mode: looking\n"
    run = run_zookeeper_restart(port, files, "--expect", "leader,follower", "--timeout", "2")
    assert run.returncode == 1
    assert json.loads(run.stdout)["mode"] == "looking"
    assert "does not serve as follower or leader 2s after its restart" in run.stderr
    assert "no further server is restarted" in run.stderr
    assert len(state["asked"]) >= 2


def test_a_standalone_server_is_not_in_a_quorum(zk_server):
    state, port, files = zk_server
    state["answer"] = "Mode: standalone\n"
    assert run_zookeeper_restart(port, files, "--expect", "leader,follower", "--timeout", "1").returncode == 1
    assert run_zookeeper_restart(port, files, "--expect", "standalone", "--timeout", "10").returncode == 0


def test_a_client_certificate_from_another_ca_gets_no_answer(zk_server, tmp_path):
    state, port, files = zk_server
    other = tmp_path / "other"
    other.mkdir()
    stranger = make_pki(other)
    run = run_zookeeper_restart(port, {"client": stranger["client"], "ca": files["ca"]},
                                "--expect", "follower", "--timeout", "1")
    assert run.returncode == 1 and state["asked"] == []
    assert "SSL" in run.stderr or "Error" in run.stderr, run.stderr


# --- zuul-restart -----------------------------------------------------------------------------------

FAKE_SYSTEMCTL = r'''#!/usr/bin/env python3
import json, os, sys
path = os.environ["FAKE_SYSTEMCTL_STATE"]
state = json.load(open(path))
args = sys.argv[1:]
state["calls"].append(args)
units = state["units"]
if args[0] == "show":
    unit = units.get(args[-1], {"pid": "0", "active": "inactive"})
    print(f"MainPID={unit['pid']}\nActiveState={unit['active']}")
elif args[0] == "restart":
    unit = units.setdefault(args[-1], {"pid": "0", "active": "inactive"})
    if "--no-block" not in args and args[-1] not in state["stuck"]:
        unit["pid"] = str(int(unit["pid"]) + 1000)
        unit["active"] = "active"
json.dump(state, open(path, "w"))
'''


@pytest.fixture
def systemctl(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "systemctl").write_text(FAKE_SYSTEMCTL)
    (bin_dir / "systemctl").chmod(0o755)
    state_file = tmp_path / "state.json"

    def run(units, *args, stuck=()):
        state_file.write_text(json.dumps({"units": units, "stuck": list(stuck), "calls": []}))
        env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}", FAKE_SYSTEMCTL_STATE=str(state_file))
        done = subprocess.run([sys.executable, str(ZUUL_RESTART), "--web-url", "http://127.0.0.1:1/", *args],
                              capture_output=True, text=True, env=env, timeout=60)
        state = json.loads(state_file.read_text())
        restarts = [c for c in state["calls"] if c[0] == "restart"]
        return done, restarts

    return run


def running(*names):
    return {f"zuul-{n}.service": {"pid": str(100 + i), "active": "active"} for i, n in enumerate(names)}


def test_the_executor_restart_is_queued_last_and_not_waited_for(systemctl):
    components = ("executor", "scheduler", "launcher")
    run, restarts = systemctl(running(*components), *components)
    assert run.returncode == 0, run.stderr
    assert restarts == [["restart", "zuul-scheduler.service"], ["restart", "zuul-launcher.service"],
                        ["restart", "--no-block", "zuul-executor.service"]]
    done = json.loads(run.stdout)
    assert done["executor"].startswith("restart queued") and done["scheduler"].startswith("restarted in")


def test_running_only_leaves_stopped_components_alone(systemctl):
    units = running("scheduler") | {"zuul-fingergw.service": {"pid": "0", "active": "inactive"}}
    run, restarts = systemctl(units, "--running-only", "scheduler", "fingergw", "executor")
    assert run.returncode == 0, run.stderr
    assert restarts == [["restart", "zuul-scheduler.service"]]
    assert json.loads(run.stdout)["fingergw"] == "not running: left alone"


def test_a_component_that_does_not_come_back_stops_the_restarts(systemctl):
    run, restarts = systemctl(running("scheduler", "launcher", "executor"), "--timeout", "2",
                              "scheduler", "launcher", "executor", stuck=["zuul-scheduler.service"])
    assert run.returncode == 1
    assert "zuul-scheduler.service does not run again 2s after its restart" in run.stderr
    assert restarts == [["restart", "zuul-scheduler.service"]]


def test_web_is_waited_for_until_its_api_answers(systemctl):
    run, restarts = systemctl(running("web"), "--timeout", "2", "web")
    assert run.returncode == 1, "the API at 127.0.0.1:1 never answers"
    assert "zuul-web.service does not run again" in run.stderr


def test_an_unknown_component_is_refused():
    run = subprocess.run([sys.executable, str(ZUUL_RESTART), "gerrit"], capture_output=True, text=True)
    assert run.returncode == 2 and "invalid choice: 'gerrit'" in run.stderr
