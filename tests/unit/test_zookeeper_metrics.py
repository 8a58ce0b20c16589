"""zookeeper-metrics (roles/zookeeper): the AdminServer's mntr as a node exporter textfile.

Run as a program against a stand-in AdminServer on 127.0.0.1 that answers
as Debian's ZooKeeper 3.9.3 does (the answers below were read from a real
ensemble): a leader, a follower, a standalone server, and a server that lost
its quorum, whose mntr fails with Jetty's HTML error page (HTTP 500).
molecule/zuul runs the script on the platform's real ensemble.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_textfile import parse, value

from tests.loopback_http import LoopbackService

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "roles" / "zookeeper" / "files" / "zookeeper-metrics"

COMMON = {"version": "3.9.3-${mvngit.commit.id}, built on 2026-03-08 16:19 UTC", "ephemerals_count": 4,
          "num_alive_connections": 3, "avg_latency": 0.4567, "outstanding_requests": 1, "znode_count": 37,
          "global_sessions": 3, "quorum_size": 3, "uptime": 9837, "command": "monitor", "error": None}
LEADER = {**COMMON, "server_state": "leader", "peer_state": "leading - broadcast", "synced_followers": 2,
          "synced_non_voting_followers": 0, "synced_observers": 0, "pending_syncs": 0, "learners": 2}
FOLLOWER = {**COMMON, "server_state": "follower", "peer_state": "following - broadcast"}
STANDALONE = {**COMMON, "server_state": "standalone"}
# What 3.9.3's AdminServer answers for mntr while the server has no quorum.
NO_QUORUM_PAGE = (b"<html>\n<head>\n<title>Error 500 java.lang.NullPointerException: Cannot invoke "
                  b"&quot;org.apache.zookeeper.server.ZooKeeperServer.dumpMonitorValues(...)&quot; "
                  b"because &quot;zkServer&quot; is null</title>\n</head>\n</html>\n")
NOT_SERVING = {"command": "monitor", "error": "This ZooKeeper instance is not currently serving requests"}


class FakeAdminServer(LoopbackService):
    thread_name = "fake-zookeeper-admin"

    def __init__(self):
        self.answer: tuple[int, bytes, dict] = (200, json.dumps(LEADER).encode(), {})
        self.paths: list[str] = []

    def respond(self, method, target, headers, raw):
        self.paths.append(target)
        if target != "/commands/mntr":
            return 404, b"not found", {}
        return self.answer

    def answers(self, data: dict | bytes, status: int = 200, content_type: str = "application/json"):
        body = data if isinstance(data, bytes) else json.dumps(data, indent=2).encode()
        self.answer = (status, body, {"Content-Type": content_type})


@pytest.fixture
def admin():
    with FakeAdminServer() as server:
        yield server


@pytest.fixture
def run(tmp_path):
    textfile = tmp_path / "zookeeper.prom"

    def run(url: str, *extra: str):
        done = subprocess.run([sys.executable, str(SCRIPT), "--url", url, "--ensemble-size", "3",
                               "--textfile", str(textfile), "--timeout", "5", *extra],
                              capture_output=True, text=True, timeout=60, check=False)
        assert "Traceback" not in done.stderr, done.stderr
        return done, (parse(textfile.read_text()) if textfile.exists() else None)

    run.textfile = textfile
    return run


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_leader_serves_with_its_followers_synced(admin, run):
    done, samples = run(f"{admin.url}/commands/mntr")
    assert done.returncode == 0, done.stderr
    assert admin.paths == ["/commands/mntr"]
    assert value(samples, "zookeeper_up") == 1
    assert value(samples, "zookeeper_serving") == 1
    assert samples["zookeeper_server_state"] == {frozenset({("state", "leader")}): 1}
    assert value(samples, "zookeeper_ensemble_size") == 3
    assert value(samples, "zookeeper_synced_followers") == 2
    assert value(samples, "zookeeper_outstanding_requests") == 1
    assert value(samples, "zookeeper_avg_latency") == pytest.approx(0.4567)
    assert value(samples, "zookeeper_znode_count") == 37
    assert value(samples, "zookeeper_num_alive_connections") == 3
    assert value(samples, "zookeeper_metrics_last_run_timestamp_seconds") > 1.7e9


@pytest.mark.parametrize("answer, state", [(FOLLOWER, "follower"), (STANDALONE, "standalone")])
def test_followers_and_a_standalone_server_serve(admin, run, answer, state):
    admin.answers(answer)
    done, samples = run(f"{admin.url}/commands/mntr")
    assert done.returncode == 0
    assert value(samples, "zookeeper_serving") == 1
    assert value(samples, "zookeeper_server_state", state=state) == 1
    # Only a leader has followers to report.
    assert "zookeeper_synced_followers" not in samples


def test_a_server_without_quorum_is_up_but_not_serving(admin, run):
    admin.answers(NO_QUORUM_PAGE, status=500, content_type="text/html;charset=iso-8859-1")
    done, samples = run(f"{admin.url}/commands/mntr")
    assert done.returncode == 0
    assert value(samples, "zookeeper_up") == 1
    assert value(samples, "zookeeper_serving") == 0
    assert samples["zookeeper_server_state"] == {frozenset({("state", "unknown")}): 1}
    assert value(samples, "zookeeper_ensemble_size") == 3
    assert "zookeeper_znode_count" not in samples
    assert "HTTP 500" in done.stderr


def test_an_error_in_the_answer_means_not_serving(admin, run):
    admin.answers(NOT_SERVING)
    done, samples = run(f"{admin.url}/commands/mntr")
    assert value(samples, "zookeeper_up") == 1
    assert value(samples, "zookeeper_serving") == 0
    assert "not currently serving requests" in done.stderr


@pytest.mark.parametrize("state", ["looking", "observer", "read-only"])
def test_other_states_do_not_serve(admin, run, state):
    admin.answers({**FOLLOWER, "server_state": state})
    _, samples = run(f"{admin.url}/commands/mntr")
    assert value(samples, "zookeeper_serving") == 0
    assert value(samples, "zookeeper_server_state", state=state) == 1


@pytest.mark.parametrize("body", [b"<html>maintenance</html>", b"[1, 2]", b""])
def test_an_answer_that_is_not_mntr_is_up_but_not_serving(admin, run, body):
    admin.answers(body, content_type="text/html")
    done, samples = run(f"{admin.url}/commands/mntr")
    assert done.returncode == 0
    assert value(samples, "zookeeper_up") == 1
    assert value(samples, "zookeeper_serving") == 0


def test_a_server_that_does_not_answer_still_gets_its_file(run):
    done, samples = run(f"http://127.0.0.1:{closed_port()}/commands/mntr")
    assert done.returncode == 0
    assert value(samples, "zookeeper_up") == 0
    assert value(samples, "zookeeper_serving") == 0
    assert "zookeeper_server_state" not in samples
    assert value(samples, "zookeeper_ensemble_size") == 3
    assert "does not answer" in done.stderr


def test_label_values_are_escaped(admin, run):
    admin.answers({**FOLLOWER, "server_state": 'odd "state"\\'})
    _, samples = run(f"{admin.url}/commands/mntr")
    assert samples["zookeeper_server_state"] == {frozenset({("state", 'odd \\"state\\"\\\\')}): 1}


def test_the_file_is_replaced_whole_and_readable_by_the_exporter(admin, run):
    run.textfile.write_text("stale\n")
    done, _ = run(f"{admin.url}/commands/mntr")
    assert done.returncode == 0
    assert run.textfile.stat().st_mode & 0o777 == 0o644
    assert [p.name for p in run.textfile.parent.iterdir()] == ["zookeeper.prom"]
    assert "stale" not in run.textfile.read_text()


def test_a_missing_directory_is_reported_without_a_traceback(admin, tmp_path):
    done = subprocess.run([sys.executable, str(SCRIPT), "--url", f"{admin.url}/commands/mntr",
                           "--ensemble-size", "3", "--textfile", str(tmp_path / "no" / "zookeeper.prom")],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1
    assert "cannot write" in done.stderr and "Traceback" not in done.stderr
