"""Restore drills on the AIO: back a service up, destroy its host, restore it onto a new one.

For each drilled host: known data is written through the service's own
front door, `devinfra-backup run` sends it to backup01, the host's
container is removed (its disk with it) and made again empty, and
playbooks/maintenance/restore.yaml -l <host> brings the service back from
backup01. The data must read back through the same front door. The
recovery time (container made again + restore playbook) is recorded in
.artifacts/restore-drills.json with the size of each backup.

Runs against a deployed AIO (`make aio`) with its backup server.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid

import pytest
import review
import yaml

NOT_TESTABLE = review.not_testable()
pytestmark = pytest.mark.skipif(bool(NOT_TESTABLE), reason=f"AIO not testable: {NOT_TESTABLE}")

FIGURES = review.ROOT / ".artifacts" / "restore-drills.json"
ETHERPAD = "devinfra-aio-etherpad01"
API_KEY = review.SECRETS["etherpad_api_key"]


def docker_exec(container: str, *argv: str, check: bool = True) -> str:
    return review.sh("docker", "exec", container, *argv, check=check)


def etherpad_api(method: str, **params) -> dict:
    fields = [arg for key, value in {"apikey": API_KEY, **params}.items()
              for arg in ("--data-urlencode", f"{key}={value}")]
    out = docker_exec(ETHERPAD, "curl", "-sS", "--max-time", "10", *fields,
                      f"http://127.0.0.1:9001/api/1/{method}")
    return json.loads(out)


def backup_now(container: str) -> dict[str, int]:
    """Run devinfra-backup on the host; return each source's archived size (bytes)."""
    docker_exec(container, "devinfra-backup", "run")
    text = docker_exec(container, "cat", "/var/lib/prometheus/node-exporter/devinfra_backup.prom")
    sizes = {}
    for line in text.splitlines():
        if line.startswith("devinfra_backup_archive_original_bytes{"):
            labels, _, value = line.partition("} ")
            sizes[labels.split('source="')[1].rstrip('"')] = int(float(value))
    return sizes


def destroy_and_restore(host: str) -> float:
    """Remove the host's container, make it again, run the restore playbook; the seconds it took."""
    container = f"devinfra-aio-{host}"
    review.sh("docker", "rm", "--force", "--volumes", container)
    start = time.monotonic()
    review.sh("devinfra", "hosts", "create", "--set", "aio", "--mirror", "",
              "--inventory", "inventory/aio/hosts.yaml", cwd=review.ROOT)
    env = dict(os.environ, ANSIBLE_STRATEGY=os.environ.get("AIO_STRATEGY", "mitogen_linear"))
    run = subprocess.run(["ansible-playbook", "-i", "inventory/aio", "playbooks/maintenance/restore.yaml",
                          "-l", host], cwd=review.ROOT, env=env, capture_output=True, text=True, check=False)
    log = review.ROOT / ".artifacts" / "logs" / f"restore-{host}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text(run.stdout + run.stderr)
    assert run.returncode == 0, f"restore of {host} failed (log {log}):\n{run.stdout[-3000:]}"
    return time.monotonic() - start


def test_a_missing_archive_fails_before_the_live_service_is_touched():
    pid = docker_exec(ETHERPAD, "systemctl", "show", "-P", "MainPID", "etherpad")
    run = subprocess.run(["ansible-playbook", "-i", "inventory/aio", "playbooks/maintenance/restore.yaml",
                          "-l", "etherpad01", "-e",
                          '{"restore_archives": {"postgresql": "postgresql.2001-01-01T00:00:00Z"}}'],
                         cwd=review.ROOT, capture_output=True, text=True, check=False)
    assert run.returncode != 0
    assert "no archive postgresql.2001-01-01T00:00:00Z" in run.stdout + run.stderr, run.stdout[-3000:]
    assert docker_exec(ETHERPAD, "systemctl", "show", "-P", "MainPID", "etherpad") == pid


def test_the_drill_playbook_restores_etherpad_onto_a_scratch_host_and_keeps_its_report(tmp_path):
    """restore-drill.yaml as an operator runs it: a scratch host, the live host untouched."""
    pad = f"drill-{uuid.uuid4().hex[:10]}"
    assert etherpad_api("createPad", padID=pad, text="the drill reads this\n")["code"] == 0
    backup_now(ETHERPAD)
    archives_before = docker_exec(ETHERPAD, "devinfra-backup", "list")
    pid = docker_exec(ETHERPAD, "systemctl", "show", "-P", "MainPID", "etherpad")
    inventory = tmp_path / "drill-hosts.yaml"
    scratch = {"drill01": {"ansible_host": "devinfra-aio-drill01"}}
    inventory.write_text(yaml.safe_dump({"all": {"hosts": scratch}}))
    reports = review.ROOT / ".artifacts" / "drills"
    review.sh("devinfra", "hosts", "create", "--set", "aio", "--mirror", "", "drill01", cwd=review.ROOT)
    try:
        start = time.monotonic()
        run = subprocess.run(
            ["ansible-playbook", "-i", "inventory/aio", "-i", str(inventory),
             "playbooks/maintenance/restore-drill.yaml", "-l", "drill01", "-e", "drill_of=etherpad01",
             "-e", f"drill_report_dir={reports}"],
            cwd=review.ROOT, capture_output=True, text=True, check=False,
            env=dict(os.environ, ANSIBLE_STRATEGY=os.environ.get("AIO_STRATEGY", "mitogen_linear")))
        seconds = time.monotonic() - start
        log = review.ROOT / ".artifacts" / "logs" / "restore-drill-etherpad01.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(run.stdout + run.stderr)
        assert run.returncode == 0, run.stdout[-3000:]
        report = json.loads(max(reports.glob("*-etherpad01.json")).read_text())
        assert report["scratch_host"] == "drill01" and report["counts"]["etherpad pads"] >= 1, report
        assert report["archives"]["postgresql"].startswith("postgresql."), report
        text = review.sh("docker", "exec", "devinfra-aio-drill01", "curl", "-sS", "--data-urlencode",
                         f"apikey={API_KEY}", "--data-urlencode", f"padID={pad}",
                         "http://127.0.0.1:9001/api/1/getText")
        assert json.loads(text)["data"]["text"] == "the drill reads this\n"
        # the scratch host never writes to the drilled host's repository
        assert review.sh("docker", "exec", "devinfra-aio-drill01", "systemctl", "is-enabled",
                         "devinfra-backup.timer", check=False).strip() == "disabled"
    finally:
        review.sh("docker", "rm", "--force", "--volumes", "devinfra-aio-drill01", check=False)
    assert docker_exec(ETHERPAD, "devinfra-backup", "list") == archives_before
    assert docker_exec(ETHERPAD, "systemctl", "show", "-P", "MainPID", "etherpad") == pid
    review.record_figure(FIGURES, "drill etherpad01 onto drill01", {"seconds": round(seconds, 1)})


def test_etherpad_comes_back_with_its_pads_on_a_new_host():
    pad = f"drill-{uuid.uuid4().hex[:10]}"
    text = f"restore drill {pad}: this line must survive the loss of etherpad01\n"
    assert etherpad_api("createPad", padID=pad, text=text)["code"] == 0
    sizes = backup_now(ETHERPAD)
    assert "postgresql" in sizes, sizes
    seconds = destroy_and_restore("etherpad01")
    answer = etherpad_api("getText", padID=pad)
    assert answer["code"] == 0 and answer["data"]["text"] == text, answer
    review.record_figure(FIGURES, "etherpad01", {"rto_seconds": round(seconds, 1), "backup_bytes": sizes})


def test_the_review_server_comes_back_with_its_pull_requests_and_repositories(tmp_path):
    project = "sandbox/sandbox"
    alice = review.Contributor("alice", tmp_path, fork=False, project=project)
    title = f"Restore drill {uuid.uuid4().hex[:8]}"
    number, head = alice.propose(title, lambda tree: (tree / "DRILL").write_text(title + "\n")
                                 or alice.git("add", "DRILL"))
    host_key = docker_exec(review.REVIEW, "cat", "/etc/ssh/ssh_host_ed25519_key.pub")
    try:
        sizes = backup_now(review.REVIEW)
        assert {"postgresql", "pagure", "host-identity"} <= set(sizes), sizes
        seconds = destroy_and_restore("review01")
        pull = review.pagure("alice", f"{project}/pull-request/{number}")
        assert pull["title"] == title and pull["commit_stop"] == head, pull
        # the same SSH identity: what users and deploys pinned still matches
        assert docker_exec(review.REVIEW, "cat", "/etc/ssh/ssh_host_ed25519_key.pub") == host_key
        # the repositories: a new clone over SSH has the pull request's branch at its commit
        (tmp_path / "after").mkdir()
        again = review.Contributor("alice", tmp_path / "after", fork=False, project=project)
        assert again.git("ls-remote", "origin", pull["branch_from"]).split()[0] == head
    finally:
        review.pagure("alice", f"{project}/pull-request/{number}/close", {})
    review.record_figure(FIGURES, "review01", {"rto_seconds": round(seconds, 1), "backup_bytes": sizes})


def test_zuul_comes_back_with_its_builds_and_project_keys():
    """The build database and the project keys: old builds listed, the old secret still decrypts."""
    before = review.zuul("builds?limit=5")
    assert before, "the AIO's Zuul has run no build yet"
    key_before = review.sh("docker", "exec", review.ZUUL, "curl", "-fsS",
                           f"http://127.0.0.1:9000/api/tenant/{review.TENANT}/key/devinfra/zuul-config.pub")
    sizes = backup_now(review.ZUUL)
    assert {"postgresql", "zuul-keys", "host-identity"} <= set(sizes), sizes
    seconds = destroy_and_restore("zuul01")
    review.wait(lambda: not review.not_testable(), 300, "Zuul answering after the restore")
    after = {build["uuid"] for build in review.zuul("builds?limit=50")}
    assert {build["uuid"] for build in before} <= after
    key_after = review.sh("docker", "exec", review.ZUUL, "curl", "-fsS",
                          f"http://127.0.0.1:9000/api/tenant/{review.TENANT}/key/devinfra/zuul-config.pub")
    assert key_after == key_before
    # The tenant loads without errors: the config project's secret decrypts with the restored key.
    review.wait(lambda: not review.zuul("config-errors"), 300, "no configuration errors")
    review.record_figure(FIGURES, "zuul01", {"rto_seconds": round(seconds, 1), "backup_bytes": sizes})
