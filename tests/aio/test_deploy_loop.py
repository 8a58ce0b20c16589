"""The AIO closes the loop: a commit merged into the AIO's clone of this
repository is applied to the AIO's hosts by its own Zuul.

Runs against a deployed AIO (`make aio`); skipped, with the reason, when
there is none. Each test merges real commits (tools/aio-push.sh), waits for
the deploy pipeline's buildset and checks what Zuul ran against `devinfra
plan` for the same range, and what the hosts serve. At the end a commit
restores the tree the AIO had (and deploys what that changes back); the
test commits stay in the AIO's history (tools/aio-push.sh merges the next
HEAD over them).
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from devinfra import plan

ROOT = Path(__file__).resolve().parents[2]
ZUUL = "devinfra-aio-zuul01"
TENANT = "devinfra"
REPO = "/var/lib/zuul/git/devinfra/devinfra"
REMOTE = f"ext::docker exec -i -u zuul {ZUUL} %S {REPO}"
TITLE_FILE = "inventory/aio/group_vars/etherpad/10-aio.yaml"
FIGURES = ROOT / ".artifacts" / "aio-deploy-figures.json"
BUILDSET_TIMEOUT = 900


def sh(*argv: str, cwd: Path | None = None, check: bool = True) -> str:
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


def api(path: str):
    out = sh("docker", "exec", ZUUL, "curl", "-fsS", f"http://127.0.0.1:9000/api/tenant/{TENANT}/{path}")
    return json.loads(out)


def deployed() -> str:
    """Why the AIO cannot be tested, or "" when it can."""
    probe = subprocess.run(["docker", "exec", ZUUL, "curl", "-fsS", "-o", "/dev/null",
                            f"http://127.0.0.1:9000/api/tenant/{TENANT}/status"],
                           capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        return f"no AIO Zuul answers in {ZUUL} (run `make aio` first): {probe.stderr.strip()[:200]}"
    heads = subprocess.run(["git", "-c", "protocol.ext.allow=always", "ls-remote", REMOTE,
                            "refs/heads/master"], capture_output=True, text=True, check=False)
    if not heads.stdout.strip():
        return "the AIO's devinfra/devinfra has no master branch (run `make aio`)"
    return ""


NOT_DEPLOYED = deployed()
pytestmark = pytest.mark.skipif(bool(NOT_DEPLOYED), reason=f"AIO loop not testable: {NOT_DEPLOYED}")


def figure(name: str, value) -> None:
    FIGURES.parent.mkdir(parents=True, exist_ok=True)
    figures = json.loads(FIGURES.read_text()) if FIGURES.exists() else {}
    figures[name] = value
    FIGURES.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"FIGURE {name}: {value}")


def deploy_items() -> list:
    status = api("status")
    return [item for pipeline in status["pipelines"] if pipeline["name"] == "deploy"
            for queue in pipeline["change_queues"] for head in queue["heads"] for item in head]


def wait_until_idle(timeout: float = BUILDSET_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while deploy_items():
        assert time.monotonic() < deadline, "the deploy pipeline stayed busy"
        time.sleep(5)


def wait_for_buildset(newrev: str, timeout: float = BUILDSET_TIMEOUT) -> dict:
    """The finished deploy buildset of this commit, with its builds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for buildset in api("buildsets?pipeline=deploy&limit=20"):
            if buildset.get("result") and any(ref["newrev"] == newrev for ref in buildset["refs"]):
                return api(f"buildset/{buildset['uuid']}")
        time.sleep(5)
    raise AssertionError(f"no finished deploy buildset for {newrev} after {timeout} s")


def results(buildset: dict) -> dict[str, str]:
    return {build["job_name"]: build["result"] for build in buildset["builds"]}


class Clone:
    """A work tree of the AIO's devinfra/devinfra; commits are merged by pushing."""

    def __init__(self, path: Path) -> None:
        self.path = path
        sh("git", "-c", "protocol.ext.allow=always", "clone", "-q", REMOTE, str(path))
        sh("git", "config", "user.name", "AIO loop test", cwd=path)
        sh("git", "config", "user.email", "aio-loop@devinfra.invalid", cwd=path)

    def head(self) -> str:
        return sh("git", "rev-parse", "HEAD", cwd=self.path).strip()

    def edit(self, path: str, change) -> None:
        target = self.path / path
        target.write_text(change(target.read_text()))

    def commit(self, message: str) -> str:
        sh("git", "commit", "-qam", message, cwd=self.path)
        return self.head()

    def merge(self) -> float:
        """Push HEAD to the AIO's master (a fast-forward); returns the time it landed."""
        sh(str(ROOT / "tools/aio-push.sh"), "HEAD", cwd=self.path)
        return time.monotonic()

    def plan(self, old: str, new: str) -> set[str]:
        files = plan.changed_files(self.path, f"{old}..{new}")
        return {step.job for step in plan.plan(self.path / "zuul.d", files)}


def set_line(key: str, value: str):
    def change(text: str) -> str:
        lines = [line for line in text.splitlines() if not line.startswith(f"{key}:")]
        return "\n".join([*lines, f"{key}: {value}"]) + "\n"
    return change


def served_title(wait: float = 120) -> str | None:
    """The title Etherpad serves; None when it did not answer within wait seconds
    (it restarts when its settings change)."""
    deadline = time.monotonic() + wait
    while True:
        page = sh("docker", "exec", "devinfra-aio-etherpad01", "curl", "-fsSk", "https://etherpad01/",
                  check=False)
        if "<title>" in page:
            start = page.index("<title>") + len("<title>")
            return page[start:page.index("</title>", start)].strip()
        if time.monotonic() >= deadline:
            return None
        time.sleep(1)


def retention() -> str:
    return sh("docker", "exec", "devinfra-aio-bastion01", "cat", "/etc/tmpfiles.d/devinfra-deploy.conf")


@pytest.fixture(scope="module")
def clone(tmp_path_factory):
    wait_until_idle()
    work = Clone(tmp_path_factory.mktemp("aio") / "devinfra")
    original = work.head()
    yield work
    # Put the AIO back: one commit restoring the original tree, deployed like
    # any other. (Forcing the branch back instead would bring Zuul no file,
    # and it would run every deploy job.)
    sh("git", "read-tree", "--reset", "-u", original, cwd=work.path)
    if sh("git", "status", "--porcelain", cwd=work.path).strip():
        restore = work.commit("Restore the AIO as it was before the loop test")
        work.merge()
        buildset = wait_for_buildset(restore)
        assert buildset["result"] == "SUCCESS", results(buildset)


def test_the_aio_zuul_loads_this_repositorys_zuul_d_without_errors(clone):
    assert api("config-errors") == []
    loaded = {job["name"] for job in api("jobs")}
    jobs, projects = plan.load_zuul_dir(clone.path / "zuul.d")
    deploy_jobs = {name for name, _ in plan.pipeline_jobs(projects, "deploy", jobs)}
    assert deploy_jobs and deploy_jobs <= loaded
    project = api("project/devinfra/devinfra")
    pipelines = {p["name"] for config in project["configs"] for p in config["pipelines"]}
    assert {"deploy", "periodic"} <= pipelines


def test_a_one_service_change_runs_only_its_playbook_and_is_served(clone):
    title = f"devinfra AIO pad {uuid.uuid4().hex[:8]}"
    old = clone.head()
    clone.edit(TITLE_FILE, set_line("etherpad_title", title))
    new = clone.commit("Rename the AIO's pad")
    assert clone.plan(old, new) == {"deploy-etherpad"}
    landed = clone.merge()
    while served_title(wait=0) != title:
        assert time.monotonic() - landed < BUILDSET_TIMEOUT, "the new title was never served"
        time.sleep(2)
    latency = time.monotonic() - landed
    buildset = wait_for_buildset(new)
    assert results(buildset) == {"deploy-etherpad": "SUCCESS"}
    assert buildset["result"] == "SUCCESS"
    figure("merge_to_served_seconds_one_service", round(latency, 1))
    figure("playbooks_run_for_one_service_change", len(buildset["builds"]))


def test_a_broken_playbook_fails_alone_its_dependents_skip_and_the_rest_applies(clone):
    """mirror vars broken: deploy-mirror fails, deploy-etherpad (after it) is
    skipped, deploy-bastion (independent of it) is applied."""
    title_before = served_title()
    old = clone.head()
    clone.edit("inventory/aio/group_vars/mirror.yaml", set_line("mirror_cache_max_size", "lots"))
    clone.edit(TITLE_FILE, set_line("etherpad_title", "never served"))
    clone.edit("inventory/aio/group_vars/bastion.yaml", set_line("bastion_log_retention_days", "91"))
    new = clone.commit("Break the mirror's variables, rename the pad, keep logs a day longer")
    expected = {"deploy-mirror": "FAILURE", "deploy-etherpad": "SKIPPED", "deploy-bastion": "SUCCESS"}
    assert clone.plan(old, new) == set(expected)
    clone.merge()
    buildset = wait_for_buildset(new)
    assert results(buildset) == expected
    assert buildset["result"] == "FAILURE"
    assert served_title() == title_before
    assert " 91d" in retention()
    failed = next(b for b in buildset["builds"] if b["job_name"] == "deploy-mirror")
    assert failed["log_url"], "the failed deploy has no log to read"
    # The build's logs hold the deploy run: its summary and its ARA report.
    run = f"/srv/zuul-logs/{failed['uuid']}/bastion/deploy"
    summary = json.loads(sh("docker", "exec", ZUUL, "cat", f"{run}/summary.json"))
    assert [(r["playbook"], r["status"]) for r in summary["results"]] == [("service-mirror.yaml", "failed")]
    report = sh("docker", "exec", ZUUL, "cat", f"{run}/ara-report/index.html")
    assert "service-mirror.yaml" in report
