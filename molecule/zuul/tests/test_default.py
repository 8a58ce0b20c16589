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
import shlex
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import testinfra.utils.ansible_runner

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "shared"))
from helpers import run_converge  # noqa: E402  (molecule/shared/helpers.py)

INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
RUNNER = testinfra.utils.ansible_runner.AnsibleRunner(INVENTORY)
TENANT = "devinfra"
CA = "/etc/devinfra/pki/ca.crt"
CURL = f"curl -sS --fail --max-time 20 --cacert {CA}"
PROJECT = "sandbox/sandbox"
JOB_TIMEOUT = 420


def host(name):
    return RUNNER.get_host(name)


@pytest.fixture(scope="module")
def zuul01():
    return host("zuul01")


@pytest.fixture(scope="module")
def client():
    return host("node01")


def api(client, path):
    return json.loads(client.check_output(f"{CURL} https://zuul01/api/{path}"))


def wait_for(what, probe, timeout):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = probe()
            if last:
                return last
        except (AssertionError, ValueError, RuntimeError) as error:
            last = error
        time.sleep(3)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")


def commit_job(zuul01, token):
    """Push a commit to sandbox/sandbox that defines and runs the smoke job; return its sha."""
    files = {
        ".zuul.yaml": (
            "- job:\n    name: smoke\n    run: playbooks/smoke.yaml\n"
            "- project:\n    post:\n      jobs: [smoke]\n"),
        "playbooks/smoke.yaml": (
            "- hosts: all\n  tasks:\n"
            "    - name: Record the node and the commit's marker\n"
            "      ansible.builtin.shell: |\n"
            "        hostname > ~/logs/hostname.txt\n"
            "        cp {{ zuul.project.src_dir }}/marker.txt ~/logs/marker.txt\n"),
        "marker.txt": f"{token}\n",
    }
    script = ["set -e", "d=$(mktemp -d)", "git clone -q /var/lib/zuul/git/sandbox/sandbox $d", "cd $d",
              "mkdir -p playbooks"]
    for path, text in files.items():
        script.append(f"printf '%s' {shlex.quote(text)} > {path}")
    script += ["git add -A", "git -c user.name=tester -c user.email=t@example.test commit -q -m "
               + shlex.quote(f"smoke {token}"), "git push -q origin HEAD:master", "git rev-parse HEAD",
               "rm -rf $d"]
    return zuul01.check_output("runuser -u zuul -- sh -c %s", "\n".join(script)).strip()


def wait_for_build(client, sha):
    def probe():
        builds = api(client, f"tenant/{TENANT}/builds?project={PROJECT}&limit=20")
        done = [b for b in builds if b.get("ref", {}).get("newrev") == sha and b.get("result")]
        return done[0] if done else None
    return wait_for(f"the smoke build of {sha}", probe, JOB_TIMEOUT)


@pytest.fixture(scope="module")
def first_build(zuul01, client):
    token = secrets.token_hex(8)
    began = time.monotonic()
    sha = commit_job(zuul01, token)
    build = wait_for_build(client, sha)
    build["_commit_to_result_s"] = round(time.monotonic() - began)
    return token, sha, build


def test_api_lists_the_tenant(client):
    tenants = wait_for("the tenant in /api/tenants",
                       lambda: [t["name"] for t in api(client, "tenants")], 300)
    assert TENANT in tenants


def test_tenant_has_no_config_errors(client):
    assert api(client, f"tenant/{TENANT}/config-errors") == []


def test_static_node_is_registered_by_the_launcher(client):
    nodes = wait_for("node01 in the tenant's nodes", lambda: api(client, f"tenant/{TENANT}/nodes"), 120)
    assert any("node01" in json.dumps(n) for n in nodes), nodes


def test_a_job_runs_on_the_static_node_and_succeeds(first_build):
    _token, _sha, build = first_build
    assert build["result"] == "SUCCESS", build
    assert build["job_name"] == "smoke"


def test_the_builds_log_is_served_over_https(client, first_build):
    token, _sha, build = first_build
    assert build["log_url"].startswith("https://zuul01/logs/"), build
    assert client.check_output(f"{CURL} {build['log_url']}node/marker.txt").strip() == token
    assert client.check_output(f"{CURL} {build['log_url']}node/hostname.txt").strip() == "node01"
    output = client.check_output(f"{CURL} {build['log_url']}job-output.txt")
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
    _token, _sha, build = first_build
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
    _token, _sha, build = first_build
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
    for name in ("zk01", "zk02", "zk03"):
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
        assert client.check_output(f"{CURL} {build['log_url']}node/marker.txt").strip() == token
    finally:
        host(leader).check_output("systemctl start zookeeper")


def test_check_mode_reports_no_change():
    run, recap = run_converge("--check")
    assert run.returncode == 0, run.stdout[-3000:]
    assert recap and all(r["changed"] == 0 for r in recap.values()), run.stdout[-6000:]


def tenant_file_checksum(zuul01):
    return zuul01.check_output("sha256sum /etc/zuul/main.yaml")


@pytest.mark.parametrize("extra, named", [
    ('{"zuul_tenants": [{"tenant": {"name": "devinfra", "max-nodes-per-job": "many",'
     ' "source": {"local": {"config-projects": ["devinfra/zuul-config"]}}}}]}',
     "tenant-conf-check|zuul-tenant-check|max-nodes-per-job"),
    ('{"zuul_tenants": [{"tenant": {"name": "devinfra",'
     ' "source": {"gerrit": {"config-projects": ["devinfra/zuul-config"]}}}}]}',
     "zuul_tenants"),
    ('{"zuul_keystore_password": ""}', "zuul_keystore_password"),
    ('{"zookeeper_hosts": ["zk01", "zk02"]}', "zookeeper_hosts"),
], ids=["tenant-zuul-rejects", "tenant-unknown-connection", "missing-secret", "zookeeper-of-two"])
def test_bad_input_fails_before_changing_anything(zuul01, extra, named):
    before = tenant_file_checksum(zuul01)
    run, recap = run_converge("-e", extra)
    assert run.returncode != 0, run.stdout[-3000:]
    # ansible-core 2.19 writes task failures to stderr.
    assert re.search(named, run.stdout + run.stderr), run.stdout[-3000:] + run.stderr[-3000:]
    assert all(r["changed"] == 0 for r in recap.values()), run.stdout[-6000:]
    assert tenant_file_checksum(zuul01) == before
