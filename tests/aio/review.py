"""Helpers of the AIO's end-to-end tests: Pagure's API and git as contributors, Zuul's API.

Everything goes through the real front doors: git over SSH to review01 with
the contributors' keys (.cache/aio/<user>_ed25519, host key pinned from the
container), Pagure's REST API with their tokens, Zuul's REST API on zuul01.
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
ZUUL = "devinfra-aio-zuul01"
REVIEW = "devinfra-aio-review01"
TENANT = "devinfra"
PROJECT = "devinfra/system-config"
SECRETS = yaml.safe_load((ROOT / "inventory/aio/group_vars/all/test-secrets.yaml").read_text())
TOKENS = SECRETS["aio_pagure_tokens"]
KEYS = ROOT / ".cache" / "aio"
TITLE_FILE = "inventory/aio/group_vars/etherpad/10-aio.yaml"


def sh(*argv: str, cwd: Path | None = None, check: bool = True, env: dict | None = None) -> str:
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False, env=env)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


def address(container: str) -> str:
    return sh("docker", "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
              container).strip()


def zuul(path: str):
    return json.loads(sh("docker", "exec", ZUUL, "curl", "-fsS",
                         f"http://127.0.0.1:9000/api/tenant/{TENANT}/{path}"))


def zuul_operator(path: str, data: dict) -> str:
    """POST to Zuul's tenant API as the AIO's operator (a token zuul-admin makes for it)."""
    token = sh("docker", "exec", ZUUL, "/opt/zuul/bin/zuul-admin", "-c", "/etc/zuul/zuul.conf",
               "create-auth-token", "--auth-config", "zuul_operator", "--user", "operator",
               "--tenant", TENANT, "--expires-in", "600").strip()  # "Bearer <JWT>"
    return sh("docker", "exec", ZUUL, "curl", "-fsS", "-X", "POST", "-H", f"Authorization: {token}",
              "-H", "Content-Type: application/json", "--data", json.dumps(data),
              f"http://127.0.0.1:9000/api/tenant/{TENANT}/{path}")


def pagure(user: str, path: str, data: dict | None = None):
    """Pagure's API as <user> (from review01 itself, which trusts the AIO's CA)."""
    args = ["docker", "exec", REVIEW, "curl", "-sS", "--cacert", "/etc/devinfra/pki/ca.crt",
            "-H", f"Authorization: token {TOKENS[user]}"]
    if data is not None:
        args += ["-X", "POST"]  # even with nothing to send (closing a pull request)
    for key, value in (data or {}).items():
        args += ["--data-urlencode", f"{key}={value}"]
    return json.loads(sh(*args, f"https://review01/api/0/{path}"))


def not_testable() -> str:
    """Why the AIO's review loop cannot be tested, or "" when it can."""
    probe = subprocess.run(["docker", "exec", ZUUL, "curl", "-fsS", "-o", "/dev/null",
                            f"http://127.0.0.1:9000/api/tenant/{TENANT}/status"],
                           capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        return f"no AIO Zuul answers in {ZUUL} (run `make aio` first): {probe.stderr.strip()[:200]}"
    try:
        branches = pagure("alice", f"{PROJECT}/git/branches").get("branches", [])
    except AssertionError as exc:
        return f"the AIO's review server does not answer (run `make aio`): {str(exc)[:200]}"
    if "master" not in branches:
        return f"{PROJECT} on review01 has no master branch (run `make aio`)"
    if not (KEYS / "alice_ed25519").exists() or not (KEYS / "bob_ed25519").exists():
        return "the contributors' keys .cache/aio/{alice,bob}_ed25519 are missing (run `make aio`)"
    return ""


class Contributor:
    """A work tree of <user>: a fork for bob (no commit access), the project itself for a core."""

    def __init__(self, user: str, workdir: Path, fork: bool, project: str = PROJECT) -> None:
        self.user, self.fork, self.project = user, fork, project
        namespace, name = project.split("/")
        ip = address(REVIEW)
        known = workdir / "known_hosts"
        host_key = sh("docker", "exec", REVIEW, "cat", "/etc/ssh/ssh_host_ed25519_key.pub").split()[:2]
        known.write_text(f"[{ip}]:2222 {' '.join(host_key)}\n")
        self.env = {"GIT_SSH_COMMAND": f"ssh -i {KEYS / (user + '_ed25519')} -o IdentitiesOnly=yes "
                                       f"-o BatchMode=yes -o UserKnownHostsFile={known}",
                    "PATH": "/usr/bin:/bin:/usr/local/bin", "HOME": str(workdir)}
        if fork:
            pagure(user, "fork", {"repo": name, "namespace": namespace, "wait": "true"})
            path = f"forks/{user}/{project}.git"
        else:
            path = f"{project}.git"
        self.path = workdir / f"{user}-{name}"
        self.url = f"ssh://_pagure@{ip}:2222/{path}"
        self.git("clone", "-q", self.url, str(self.path), cwd=workdir)
        self.git("config", "user.name", user)
        self.git("config", "user.email", f"{user}@review01.aio")
        self.git("remote", "add", "upstream", f"ssh://_pagure@{ip}:2222/{project}.git")

    def git(self, *args: str, cwd: Path | None = None) -> str:
        return sh("git", *args, cwd=cwd or self.path, env=self.env)

    def propose(self, title: str, change) -> tuple[int, str]:
        """A branch off the project's master with change(tree) committed, pushed, and its pull request."""
        branch = "change-" + uuid.uuid4().hex[:8]
        self.git("fetch", "-q", "upstream", "master")
        self.git("checkout", "-q", "-B", branch, "upstream/master")
        change(self.path)
        self.git("commit", "-qam", title)
        self.git("push", "-q", "origin", branch)
        data = {"title": title, "branch_to": "master", "branch_from": branch}
        if self.fork:
            namespace, name = self.project.split("/")
            data.update(repo_from=name, repo_from_username=self.user, repo_from_namespace=namespace)
        answer = pagure(self.user, f"{self.project}/pull-request/new", data)
        assert "id" in answer, answer
        return answer["id"], self.git("rev-parse", "HEAD").strip()


def restore(core: Contributor, before: str, paths: list[str], timeout: float) -> None:
    """Put <paths> back as they were at commit <before>, through a core's reviewed pull request."""
    core.git("fetch", "-q", "upstream", "master")
    if not core.git("diff", "--name-only", before, "upstream/master", "--", *paths).strip():
        return
    number, _ = core.propose("Restore what the AIO's tests changed",
                             lambda tree: core.git("checkout", before, "--", *paths))
    wait(lambda: zuul_flag(number) == "success", timeout, f"check passing on restoring pull request {number}")
    comment(core.user, number, ":thumbsup:")
    wait(lambda: pull(number)["status"] == "Merged", timeout, f"restoring pull request {number} merged")


def close(user: str, number: int) -> None:
    """<user> closes pull request <number> unmerged (its author may)."""
    answer = pagure(user, f"{PROJECT}/pull-request/{number}/close", {})
    assert answer.get("message") == "Pull-request closed!", answer


def comment(user: str, number: int, text: str) -> None:
    answer = pagure(user, f"{PROJECT}/pull-request/{number}/comment", {"comment": text})
    assert answer.get("message") == "Comment added", answer


def pull(number: int) -> dict:
    return pagure("alice", f"{PROJECT}/pull-request/{number}")


def zuul_flag(number: int) -> str | None:
    flags = [f for f in pagure("alice", f"{PROJECT}/pull-request/{number}/flag")["flags"]
             if f["user"]["name"] == "zuul"]
    return flags[0]["status"] if flags else None


def items(pipeline: str) -> list[dict]:
    return [item for p in zuul("status")["pipelines"] if p["name"] == pipeline
            for queue in p["change_queues"] for head in queue["heads"] for item in head]


def item(pipeline: str, number: int) -> dict | None:
    """Pull request <number>'s queue item in <pipeline> (refs' ids are "<number>,<head>"), or None."""
    for queued in items(pipeline):
        if any(str(ref.get("id", "")).split(",")[0] == str(number) for ref in queued["refs"]):
            return queued
    return None


def in_pipeline(pipeline: str, number: int) -> bool:
    return item(pipeline, number) is not None


def wait(probe, timeout: float, what: str, interval: float = 3):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"{what}: not after {timeout} s (last seen: {last!r})")


def buildsets(pipeline: str, number: int) -> list[dict]:
    """Finished buildsets of a pipeline for pull request <number>, newest first."""
    return [b for b in zuul(f"buildsets?pipeline={pipeline}&change={number}&limit=10") if b.get("result")]


def results(buildset: dict) -> dict[str, str]:
    full = zuul(f"buildset/{buildset['uuid']}")
    return {build["job_name"]: build["result"] for build in full["builds"]}


def record_figure(path: Path, name: str, value) -> None:
    """Add one figure to a JSON file of .artifacts/ (and say it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    figures = json.loads(path.read_text()) if path.exists() else {}
    figures[name] = value
    path.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"FIGURE {name}: {value}")


def set_line(path: str, key: str, value: str):
    """A change for Contributor.propose: `key: value` as the last line of <path>, any earlier one dropped."""
    def change(tree):
        target = tree / path
        lines = [line for line in target.read_text().splitlines() if not line.startswith(f"{key}:")]
        target.write_text("\n".join([*lines, f"{key}: {value}"]) + "\n")
    return change


def served_title(wait_seconds: float = 0) -> str | None:
    """The title Etherpad serves; None when it did not answer within wait_seconds (it restarts on changes)."""
    deadline = time.monotonic() + wait_seconds
    while True:
        page = sh("docker", "exec", "devinfra-aio-etherpad01", "curl", "-fsSk", "https://etherpad01/",
                  check=False)
        if "<title>" in page:
            start = page.index("<title>") + len("<title>")
            return page[start:page.index("</title>", start)].strip()
        if time.monotonic() >= deadline:
            return None
        time.sleep(1)


def secret_values() -> set[str]:
    """Every value of the AIO's test secrets, and its private keys' bodies."""
    values: set[str] = set()

    def walk(node):
        if isinstance(node, dict):
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)
        elif isinstance(node, str) and len(node) >= 8 and "{{" not in node:
            values.add(node)
    walk(SECRETS)
    for key in [*KEYS.glob("*_ed25519"), KEYS / "ca" / "ca.key"]:
        lines = [line for line in key.read_text().splitlines() if line and not line.startswith("-----")]
        values.update(line for line in lines if len(line) >= 16)
    return values


def published_secrets(builds: list[str]) -> list[str]:
    """The files the builds published (the log store on zuul01) that hold a test secret value."""
    if not [uuid for uuid in builds if uuid]:
        return []  # nothing published (and grep without a path would read its input)
    patterns = "\n".join(sorted(secret_values())) + "\n"
    subprocess.run(["docker", "exec", "-i", ZUUL, "sh", "-c", "cat > /tmp/aio-secret-patterns"],
                   input=patterns, text=True, check=True)
    roots = [f"/srv/zuul-logs/{uuid}" for uuid in builds if uuid]
    found = sh("docker", "exec", ZUUL, "grep", "-rlF", "-f", "/tmp/aio-secret-patterns", *roots, check=False)
    return found.split()
