"""Every certificate renewed while a build runs: rolling restarts that cannot deadlock.

A build waits on node01 for a file that the test writes only after the
converge has returned, as a deploy build waits for the playbook it runs.
The converge renews every host's certificate (a validity longer than the
renewal window forces it), so every service must pick up a new certificate:
ZooKeeper one server at a time, each back in the quorum before the next goes
down (read from the servers' own logs); PostgreSQL and nginx by a reload;
Zuul's components by a restart, the executor's only once its build has
finished. A handler that restarted the executor and waited for it (its
graceful stop waits for the build) would hang the converge: it is given
900 s. Runs after test_maintenance.py (pytest takes the files in order).
"""

import base64
import hashlib
import json
import re
import secrets
import time
from datetime import UTC, datetime

import pytest
from devinfra_molecule import PKI_CA_FILE, PKI_CERT_FILE, PKI_DIR, PKI_KEY_FILE, run_converge, wait_for
from zuul_platform import ZOOKEEPERS, api, builds_of, commit_files, host, wait_for_build

RELEASE = "/tmp/devinfra-renewal-release"
PKI = PKI_DIR
COMPONENTS = ["scheduler", "web", "launcher", "fingergw", "executor"]
# pki_cert_renew_days may not reach pki_cert_valid_days: 366 days ahead a
# certificate of 365 days has expired, so every host's is renewed, and the
# new ones (400 days) are not renewed again by the converges after this.
RENEW = ["-e", json.dumps({"pki_cert_valid_days": 400, "pki_cert_renew_days": 366})]

# Served certificate's sha256 (DER), from zuul01 with its own client certificate.
PEER_CERT = r"""
import hashlib, socket, ssl, struct, sys
name, port, postgres = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "postgres"
context = ssl.create_default_context(cafile=sys.argv[4])
context.load_cert_chain(sys.argv[5], sys.argv[6])
raw = socket.create_connection((name, port), timeout=10)
if postgres:
    raw.sendall(struct.pack("!ii", 8, 80877103))
    assert raw.recv(1) == b"S", "no TLS from PostgreSQL"
with context.wrap_socket(raw, server_hostname=name) as tls:
    print(hashlib.sha256(tls.getpeercert(binary_form=True)).hexdigest())
"""


def file_cert(server):
    """sha256 of the DER of the host certificate on disk."""
    pem = server.file(f"{PKI}/host.crt").content_string
    body = re.search(r"-----BEGIN CERTIFICATE-----(.+?)-----END CERTIFICATE-----", pem, re.S).group(1)
    return hashlib.sha256(base64.b64decode("".join(body.split()))).hexdigest()


def served_cert(zuul01, name, port, kind="tls"):
    out = zuul01.run("python3 -c %s %s %s %s %s %s %s", PEER_CERT, name, str(port), kind,
                     PKI_CA_FILE, PKI_CERT_FILE, PKI_KEY_FILE)
    assert out.rc == 0, out.stderr[-2000:]
    return out.stdout.strip()


def pids(server, units):
    return {u: server.check_output(f"systemctl show --property=MainPID --value {u}").strip() for u in units}


def journal(server, unit, since):
    """(unix time, message) of the unit's journal lines since `since` (unix time)."""
    lines = server.check_output(f"journalctl -u {unit} -o short-unix --no-pager --since @{int(since)}")
    entries = []
    for line in lines.splitlines():
        stamp, _, rest = line.partition(" ")
        try:
            entries.append((float(stamp), rest))
        except ValueError:
            continue
    return entries


@pytest.fixture(scope="module")
def renewal(zuul01, client):
    """Start a build that waits for RELEASE, renew every certificate, release the build."""
    zk = {name: host(name) for name in ZOOKEEPERS}
    db01 = host("db01")
    client.run(f"rm -f {RELEASE}")
    sha = commit_files(zuul01, {
        ".zuul.yaml": ("- job:\n    name: renewal-wait\n    timeout: 1800\n    run: playbooks/wait.yaml\n"
                       "- project:\n    post:\n      jobs: [renewal-wait]\n"),
        "playbooks/wait.yaml": (f"- hosts: all\n  tasks:\n"
                                f"    - name: Wait until the test releases the build\n"
                                f"      ansible.builtin.wait_for:\n        path: {RELEASE}\n"
                                f"        timeout: 1500\n"),
        "marker.txt": f"{secrets.token_hex(8)}\n",
    }, "wait through a certificate renewal")
    wait_for(lambda: builds_of(client, sha, "false"), 240, "the waiting build to start")
    before = {
        "zk_pids": {name: pids(server, ["zookeeper"])["zookeeper"] for name, server in zk.items()},
        "zuul_pids": pids(zuul01, [f"zuul-{c}" for c in COMPONENTS]),
        "certs": {name: file_cert(host(name)) for name in [*ZOOKEEPERS, "db01", "zuul01"]},
    }
    began = time.time()
    run = run_converge(*RENEW, timeout=900)
    converged = time.time()
    still_running = builds_of(client, sha, "false")
    client.run_expect([0], f"touch {RELEASE}")
    build = wait_for_build(client, sha)
    return {"run": run, "sha": sha, "build": build, "before": before, "began": began,
            "converged": converged, "still_running": still_running, "zk": zk, "db01": db01}


def test_the_converge_renews_every_certificate_without_waiting_for_the_build(renewal):
    run = renewal["run"]
    assert run.returncode == 0, run.output()
    assert "RUNNING HANDLER [zookeeper : Restart zookeeper]" in run.stdout
    # The converge returned while the build still waited (it had not been released).
    assert renewal["still_running"], "the build had ended before the converge returned"
    for name, old in renewal["before"]["certs"].items():
        assert file_cert(host(name)) != old, f"{name}'s certificate was not renewed"


def test_the_build_finishes_once_and_succeeds(renewal, client):
    assert renewal["build"]["result"] == "SUCCESS", renewal["build"]
    assert len(builds_of(client, renewal["sha"], "true")) == 1, "the build was aborted and retried"


def test_zookeeper_restarts_one_server_at_a_time_each_back_in_the_quorum_first(renewal):
    events = {}
    for name, server in renewal["zk"].items():
        entries = journal(server, "zookeeper", renewal["began"] - 1)
        stopped = [t for t, text in entries if "Stopping zookeeper" in text]
        assert len(stopped) == 1, (name, [e for e in entries if "zookeeper.service" in e[1]])
        rejoined = [t for t, text in entries if "LEADER ELECTION TOOK" in text and t > stopped[0]]
        assert rejoined, f"{name} did not rejoin a quorum after its restart"
        events[name] = (stopped[0], rejoined[0])
    order = sorted(events, key=lambda name: events[name][0])
    print("zookeeper restarts (stopped, rejoined):",
          {n: [round(t - renewal["began"], 1) for t in events[n]] for n in order})
    for first, second in zip(order, order[1:], strict=False):
        assert events[second][0] > events[first][1], (
            f"{second} went down at {events[second][0]:.1f}, before {first} rejoined "
            f"at {events[first][1]:.1f}")


def test_every_zookeeper_server_serves_its_new_certificate(renewal, zuul01):
    for name, server in renewal["zk"].items():
        assert served_cert(zuul01, name, 2281) == file_cert(server), name
        assert pids(server, ["zookeeper"])["zookeeper"] != renewal["before"]["zk_pids"][name]


def test_postgresql_and_the_web_front_serve_their_new_certificates(renewal, zuul01):
    assert served_cert(zuul01, "db01", 5432, "postgres") == file_cert(renewal["db01"])
    assert served_cert(zuul01, "zuul01", 443) == file_cert(zuul01)


def test_every_zuul_component_runs_a_new_process_the_executor_one_started_after_the_build(renewal, zuul01,
                                                                                            client):
    old = renewal["before"]["zuul_pids"]

    def all_new():
        now = pids(zuul01, [f"zuul-{c}" for c in COMPONENTS])
        return now if all(now[u] not in ("0", old[u]) for u in now) else None

    now = wait_for(all_new, 300, "a new process of every Zuul component")
    print("zuul components before and after:", json.dumps({u: [old[u], now[u]] for u in now}))
    started = float(zuul01.check_output(
        "date -d \"$(systemctl show --property=ExecMainStartTimestamp --value zuul-executor)\" +%s"))
    ended = datetime.fromisoformat(renewal["build"]["end_time"]).replace(tzinfo=UTC).timestamp()
    assert started >= int(ended), f"the executor restarted at {started} under the build (ended {ended})"
    wait_for(lambda: [c["state"] for c in api(client, "components").get("executor", [])] == ["running"],
             120, "the executor registered as running again")
