"""Restore drills on the AIO: back a service up, destroy its host, restore it onto a new one.

For each drilled host (etherpad01, review01, zuul01, bastion01): known
data is written through the service's own front door (a pad, a pull
request, a build and a job whose secret is encrypted with the project's
key, a file in the private inventory), `devinfra-backup run` sends it to
backup01, the host's container is removed (its disk with it) and made
again empty, and playbooks/maintenance/restore.yaml -l <host> brings the
service back from backup01. The data must read back through the same
front door. The recovery time (container made again + restore playbook)
is recorded in .artifacts/restore-drills.json with the size of each
backup; restore-drill.yaml's run onto a scratch host is recorded there too.

Runs against a deployed AIO (`make aio`) with its backup server.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time
import uuid

import pytest
import review
import yaml
from zuul_secret import zuul_secret

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
    backup_now(ETHERPAD)  # every other source has an archive: only the named one is missing
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
    assert etherpad_api("createPad", padID=pad, text="the drill reads this")["code"] == 0
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
    # Etherpad ends every pad's text with a newline of its own.
    text = f"restore drill {pad}: this line must survive the loss of etherpad01"
    assert etherpad_api("createPad", padID=pad, text=text)["code"] == 0
    sizes = backup_now(ETHERPAD)
    assert "postgresql" in sizes, sizes
    seconds = destroy_and_restore("etherpad01")
    answer = etherpad_api("getText", padID=pad)
    assert answer["code"] == 0 and answer["data"]["text"] == text + "\n", answer
    review.record_figure(FIGURES, "etherpad01", {"rto_seconds": round(seconds, 1), "backup_bytes": sizes})


def test_the_review_server_comes_back_with_its_pull_requests_and_repositories(tmp_path):
    project = "sandbox/sandbox"
    alice = review.Contributor("alice", tmp_path, fork=False, project=project)
    title = f"Restore drill {uuid.uuid4().hex[:8]}"

    def change(tree):
        (tree / "DRILL").write_text(title + "\n")
        alice.git("add", "DRILL")

    number, head = alice.propose(title, change)
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


BASTION = "devinfra-aio-bastion01"
BASTION_FILES = ("for f in $(find /etc/devinfra/private /etc/devinfra/secrets /var/lib/devinfra-deploy/ca"
                 " -type f | sort); do echo \"$(stat -c '%A %U %G' $f) $(sha256sum $f)\"; done")


def test_the_bastion_comes_back_with_its_private_inventory_ca_and_host_key():
    """The bastion's private inventory, CA and the AIO's secrets, and its SSH identity, after its loss."""
    marker = "/etc/devinfra/private/restore-drill.txt"
    docker_exec(BASTION, "sh", "-c", f"echo {uuid.uuid4().hex} > {marker} && chgrp devinfra-deploy {marker}"
                                     f" && chmod 0640 {marker}")
    try:
        files = docker_exec(BASTION, "sh", "-c", BASTION_FILES)
        assert marker in files and "ca.key" in files, files
        host_key = docker_exec(BASTION, "cat", "/etc/ssh/ssh_host_ed25519_key.pub")
        sizes = backup_now(BASTION)
        assert {"bastion", "host-identity"} <= set(sizes), sizes
        seconds = destroy_and_restore("bastion01")
        # every file back, with its owner, group, mode and content (the marker exists only in the backup)
        assert docker_exec(BASTION, "sh", "-c", BASTION_FILES) == files
        # the host key Zuul's deploy secret pins
        assert docker_exec(BASTION, "cat", "/etc/ssh/ssh_host_ed25519_key.pub") == host_key
    finally:
        docker_exec(BASTION, "rm", "-f", marker, check=False)
    review.record_figure(FIGURES, "bastion01", {"rto_seconds": round(seconds, 1), "backup_bytes": sizes})


SANDBOX = "sandbox/sandbox"
SECRET_JOB = "restore-drill-secret"


def sandbox_secret_job(tmp_path, value: str) -> review.Contributor:
    """sandbox/sandbox's master gets a secret encrypted with its project key and a job that checks it.

    The job runs on the executor alone and asserts the decrypted value's sha256: it fails
    when Zuul cannot decrypt the secret with the project's private key.
    """
    public_key = review.sh("docker", "exec", review.ZUUL, "curl", "-fsS",
                           f"http://127.0.0.1:9000/api/tenant/{review.TENANT}/key/{SANDBOX}.pub")
    secret = zuul_secret({"value": value}, SECRET_JOB, public_key, ["value"])
    digest = hashlib.sha256(value.encode()).hexdigest()
    config = secret + yaml.safe_dump([
        {"job": {"name": SECRET_JOB, "parent": "base", "nodeset": {"nodes": []}, "attempts": 1,
                 "secrets": [{"name": "drill_secret", "secret": SECRET_JOB}],
                 "run": "playbooks/restore-drill-secret.yaml"}},
        {"project": {"periodic": {"jobs": [SECRET_JOB]}}}], sort_keys=False)
    playbook = yaml.safe_dump([{"hosts": "localhost", "gather_facts": False, "tasks": [
        {"name": "Check that the secret decrypted to the value the test encrypted",
         "ansible.builtin.assert": {"that": f"drill_secret.value | hash('sha256') == '{digest}'"}}]}])
    alice = review.Contributor("alice", tmp_path, fork=False, project=SANDBOX)

    def write(tree):
        (tree / "playbooks").mkdir(exist_ok=True)
        (tree / "playbooks/restore-drill-secret.yaml").write_text(playbook)
        (tree / ".zuul.d").mkdir(exist_ok=True)
        (tree / ".zuul.d/restore-drill.yaml").write_text(config)
        alice.git("add", "playbooks", ".zuul.d")

    alice.git("checkout", "-q", "master")
    write(alice.path)
    alice.git("commit", "-qm", "Add a job that checks a secret (tests/aio/test_restore_drill.py)")
    alice.git("push", "-q", "origin", "master")
    review.sh("docker", "exec", "-u", "zuul", review.ZUUL, "/opt/zuul/bin/zuul-scheduler",
              "tenant-reconfigure", review.TENANT)
    review.wait(lambda: job_known(SECRET_JOB), 300, f"Zuul knowing the job {SECRET_JOB}")
    return alice


def job_known(name: str) -> bool:
    return any(job["name"] == name for job in review.zuul("jobs"))


def run_secret_job(head: str) -> dict:
    """Enqueue sandbox's master in the periodic pipeline; the secret job's finished build."""
    known = {build["uuid"] for build in review.zuul(f"builds?job_name={SECRET_JOB}&limit=20")}
    review.zuul_operator(f"project/{SANDBOX}/enqueue",
                         {"pipeline": "periodic", "ref": "refs/heads/master",
                          "oldrev": "0" * 40, "newrev": head})

    def finished():
        builds = [build for build in review.zuul(f"builds?job_name={SECRET_JOB}&limit=20")
                  if build["uuid"] not in known and build.get("result")]
        return builds[0] if builds else None

    review.wait(finished, 600, f"a build of {SECRET_JOB}")
    return finished()


def test_zuul_comes_back_with_its_builds_and_project_keys(tmp_path):
    """The build database and the project keys: old builds listed, a job still decrypts an old secret."""
    before = review.zuul("builds?limit=5")
    assert before, "the AIO's Zuul has run no build yet"
    key_before = review.sh("docker", "exec", review.ZUUL, "curl", "-fsS",
                           f"http://127.0.0.1:9000/api/tenant/{review.TENANT}/key/devinfra/zuul-config.pub")
    alice = sandbox_secret_job(tmp_path, f"drill-{uuid.uuid4().hex}")
    head = alice.git("rev-parse", "HEAD").strip()
    try:
        first = run_secret_job(head)
        assert first["result"] == "SUCCESS", first
        sizes = backup_now(review.ZUUL)
        assert {"postgresql", "zuul-keys", "host-identity"} <= set(sizes), sizes
        seconds = destroy_and_restore("zuul01")
        review.wait(lambda: not review.not_testable(), 300, "Zuul answering after the restore")
        after = {build["uuid"] for build in review.zuul("builds?limit=50")}
        assert {build["uuid"] for build in before} | {first["uuid"]} <= after
        key_after = review.sh("docker", "exec", review.ZUUL, "curl", "-fsS",
                              f"http://127.0.0.1:9000/api/tenant/{review.TENANT}/key/devinfra/zuul-config.pub")
        assert key_after == key_before
        review.wait(lambda: job_known(SECRET_JOB), 300, f"the restored Zuul knowing {SECRET_JOB}")
        # The secret was encrypted before the loss, with the key the backup holds.
        again = run_secret_job(head)
        assert again["result"] == "SUCCESS", again
        review.wait(lambda: not review.zuul("config-errors"), 300, "no configuration errors")
    finally:
        alice.git("rm", "-q", "-r", "playbooks", ".zuul.d")
        alice.git("commit", "-qm", "Remove the restore drill's secret job")
        alice.git("push", "-q", "origin", "master")
    review.record_figure(FIGURES, "zuul01", {"rto_seconds": round(seconds, 1), "backup_bytes": sizes})
