"""The Zuul platform at work, seen from its users.

zk01-03 run the ZooKeeper ensemble (TLS only), db01 PostgreSQL, zuul01
every Zuul component behind the web front (which also serves the build
logs), node01 is the static build node and the client of these tests. Jobs
run because a commit lands in a repository Zuul watches, exactly as in the
AIO.
"""

import json
import os
import re
import secrets
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
from devinfra_molecule import wait_for
from zuul_platform import CA, TENANT, ZOOKEEPERS, api, commit_job, host, logs_curl, wait_for_build


def test_api_lists_the_tenant(client):
    tenants = wait_for(lambda: [t["name"] for t in api(client, "tenants")], 300,
                       "the tenant in /api/tenants", interval=3)
    assert TENANT in tenants


def test_tenant_has_no_config_errors(client):
    assert api(client, f"tenant/{TENANT}/config-errors") == []


def test_static_node_is_registered_by_the_launcher(client):
    nodes = wait_for(lambda: api(client, f"tenant/{TENANT}/nodes"), 120, "node01 in the tenant's nodes",
                     interval=3)
    assert any("node01" in json.dumps(n) for n in nodes), nodes


def test_a_job_runs_on_the_static_node_and_succeeds(first_build):
    _token, build = first_build
    assert build["result"] == "SUCCESS", build
    assert build["job_name"] == "smoke"


def test_the_builds_log_is_served_over_https(client, first_build):
    token, build = first_build
    assert build["log_url"].startswith("https://logs.zuul01/"), build
    curl = logs_curl(client)
    assert client.check_output(f"{curl} {build['log_url']}node/marker.txt").strip() == token
    assert client.check_output(f"{curl} {build['log_url']}node/hostname.txt").strip() == "node01"
    output = client.check_output(f"{curl} {build['log_url']}job-output.txt")
    assert "Record the node and the commit's marker" in output


def test_console_stream_websocket_upgrades_through_the_web_front(client):
    # The handshake zuul-web's live log streaming starts with, through nginx.
    out = client.check_output(
        "curl -sS --max-time 5 --cacert %s -o /dev/null -w '%%{http_code}' --http1.1"
        " -H 'Connection: Upgrade' -H 'Upgrade: websocket' -H 'Sec-WebSocket-Version: 13'"
        " -H 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==' https://zuul01/api/tenant/%s/console-stream"
        " || true", CA, TENANT)
    assert out.startswith("101"), out


# Resident memory (KiB) of the processes whose command line holds argv[1].
RSS = """python3 -c '
import os, sys
total = 0
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        if sys.argv[1] in open(f"/proc/{pid}/cmdline", "rb").read().decode(errors="replace"):
            status = open(f"/proc/{pid}/status").read().split("VmRSS:")[1]
            total += int(status.split()[0])
    except (OSError, IndexError):
        pass
print(total)' %s"""


def test_report_the_platforms_figures(first_build):
    """Not a check: records memory and time to the first successful job in .artifacts/."""
    _token, build = first_build
    started = subprocess.run(
        ["docker", "inspect", "-f", "{{.State.StartedAt}}", "devinfra-molecule-zuul-zuul01"],
        capture_output=True, text=True, check=True).stdout.strip()
    start = datetime.fromisoformat(started[:26].rstrip("Z") + "+00:00")
    end = datetime.fromisoformat(build["end_time"]).replace(tzinfo=UTC)
    figures = {
        "zuul_rss_mib": int(host("zuul01").check_output(RSS, "/opt/zuul/bin/zuul-")) // 1024,
        "zookeeper_rss_mib_per_node": int(host("zk01").check_output(RSS, "zookeeper")) // 1024,
        "postgresql_rss_mib": int(host("db01").check_output(RSS, "postgres")) // 1024,
        "container_start_to_first_job_end_s": round((end - start).total_seconds()),
        "commit_to_first_job_result_s": build["_commit_to_result_s"],
    }
    out = Path(os.environ["MOLECULE_PROJECT_DIRECTORY"]) / ".artifacts" / "zuul-figures.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(figures, indent=2) + "\n")
    print(figures)
    assert figures["zuul_rss_mib"] > 0


def test_the_build_is_recorded_in_the_database(first_build):
    _token, build = first_build
    result = host("db01").check_output(
        "runuser -u postgres -- psql -d zuul -tAc %s",
        f"select result from zuul_build where uuid = '{build['uuid']}'")
    assert result.strip() == "SUCCESS"


def test_zookeeper_refuses_plaintext_clients(zuul01):
    probe = (
        "import socket\n"
        "try:\n"
        "    socket.create_connection(('zk01', 2181), timeout=5)\n"
        "    print('2181 open')\n"
        "except ConnectionRefusedError:\n"
        "    print('2181 refused')\n"
        "s = socket.create_connection(('zk01', 2281), timeout=5)\n"
        "s.settimeout(10)\n"
        # A plaintext ZooKeeper ConnectRequest: the TLS port must not answer it.
        "s.sendall(bytes.fromhex('0000002c' + '00' * 44))\n"
        "try:\n"
        "    data = s.recv(64)\n"
        "except (ConnectionResetError, TimeoutError):\n"
        "    data = b''\n"
        "print('answer', len(data))\n")
    out = zuul01.check_output("python3 -c %s", probe)
    assert "2181 refused" in out
    assert "answer 0" in out, out


def zookeeper_leader():
    """The ensemble member that listens on the quorum port (only the leader does)."""
    for name in ZOOKEEPERS:
        if re.search(r":2888\b", host(name).check_output("ss -ltn")):
            return name
    raise AssertionError("no ZooKeeper node listens on 2888: no leader")


def test_with_the_zookeeper_leader_stopped_zuul_still_answers_and_runs_a_job(zuul01, client, first_build):
    leader = zookeeper_leader()
    host(leader).check_output("systemctl stop zookeeper")
    try:
        assert TENANT in [t["name"] for t in api(client, "tenants")]
        token = secrets.token_hex(8)
        build = wait_for_build(client, commit_job(zuul01, token))
        assert build["result"] == "SUCCESS", build
        assert client.check_output(f"{logs_curl(client)} {build['log_url']}node/marker.txt").strip() == token
    finally:
        host(leader).check_output("systemctl start zookeeper")


def test_check_mode_reports_no_change(check_mode_is_clean):
    check_mode_is_clean()


ZOOKEEPER_FILES = ("sha256sum /etc/zookeeper/devinfra/* /var/lib/zookeeper/myid"
                   " /etc/systemd/system/zookeeper.service /etc/systemd/system/zookeeper.service.d/*.conf")


def live_state():
    """What a refused run must leave alone: the tenant file, ZooKeeper's files and processes."""
    state = {"tenant": host("zuul01").check_output("sha256sum /etc/zuul/main.yaml")}
    for name in ZOOKEEPERS:
        zk = host(name)
        state[name] = (zk.check_output(ZOOKEEPER_FILES),
                       zk.check_output("systemctl show -p MainPID --value zookeeper"))
    return state


@pytest.mark.parametrize("extra, named", [
    ({"zuul_tenants": [{"tenant": {"name": "devinfra", "max-nodes-per-job": "many",
                                   "source": {"local": {"config-projects": ["devinfra/zuul-config"]}}}}]},
     re.compile("tenant-conf-check|zuul-tenant-check|max-nodes-per-job")),
    ({"zuul_tenants": [{"tenant": {"name": "devinfra",
                                   "source": {"gerrit": {"config-projects": ["devinfra/zuul-config"]}}}}]},
     "zuul_tenants"),
    ({"zuul_keystore_password": ""}, "zuul_keystore_password"),
    ({"zookeeper_hosts": ["zk01", "zk02"]}, '["zk01", "zk02"] (2 hosts)'),
    ({"zookeeper_id": 1}, "zookeeper_id: each host of zookeeper_hosts needs its own id"),
    ({"zookeeper_heap_size": "lots"}, "zookeeper_heap_size lots must be a number"),
    ({"zookeeper_secure_client_port": "tls"}, "zookeeper_secure_client_port"),
], ids=["tenant-zuul-rejects", "tenant-unknown-connection", "missing-secret", "zookeeper-of-two",
        "zookeeper-same-id-everywhere", "zookeeper-bad-heap", "zookeeper-port-wrong-type"])
def test_bad_input_fails_before_changing_anything(bad_vars_change_nothing, extra, named):
    bad_vars_change_nothing(extra, named, live_state)
