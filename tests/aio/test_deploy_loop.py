"""The AIO closes the loop: a pull request merged on the AIO's review server
is applied to the AIO's hosts by its own Zuul.

Runs against a deployed AIO (`make aio`); skipped, with the reason, when
there is none. alice, a core reviewer, proposes real changes and approves
them; the gate merges them; the tests check what the deploy pipeline ran
against `devinfra plan` for the same files, and what the hosts serve. At the
end a last pull request restores the tree the AIO had (and deploys what that
changes back).
"""

from __future__ import annotations

import json
import time

import pytest
import review
from review import TITLE_FILE, Contributor, comment, pull, served_title, set_line, wait

from devinfra import plan

NOT_TESTABLE = review.not_testable()
pytestmark = pytest.mark.skipif(bool(NOT_TESTABLE), reason=f"AIO loop not testable: {NOT_TESTABLE}")
FIGURES = review.ROOT / ".artifacts" / "aio-deploy-figures.json"
TIMEOUT = 1500
BASTION = "devinfra-aio-bastion01"


def figure(name: str, value) -> None:
    review.record_figure(FIGURES, name, value)


def both(*changes):
    def change(tree):
        for one in changes:
            one(tree)
    return change


def retention() -> str:
    return review.sh("docker", "exec", BASTION, "cat",
                     "/etc/tmpfiles.d/devinfra-deploy.conf")


@pytest.fixture(scope="module")
def alice(tmp_path_factory):
    return Contributor("alice", tmp_path_factory.mktemp("alice"), fork=False)


def merge(alice: Contributor, title: str, change) -> tuple[int, set[str], float]:
    """alice proposes and approves; returns the pull request, what plan says it deploys, when it merged."""
    number, head = alice.propose(title, change)
    files = plan.changed_files(alice.path, f"{head}~1..{head}")
    planned = {step.job for step in plan.plan(alice.path / "zuul.d", files)}
    comment("alice", number, ":thumbsup:")
    wait(lambda: pull(number)["status"] == "Merged", TIMEOUT, f"pull request {number} merged by the gate")
    return number, planned, time.monotonic()


@pytest.fixture(scope="module")
def original(alice):
    alice.git("fetch", "-q", "upstream", "master")
    before = alice.git("rev-parse", "upstream/master").strip()
    yield before
    # Put the AIO back: one pull request restoring the original tree, deployed like any other.
    alice.git("fetch", "-q", "upstream", "master")
    if alice.git("diff", "--name-only", before, "upstream/master").strip():
        merge(alice, "Restore the AIO as it was before the loop test",
              lambda tree: alice.git("read-tree", "--reset", "-u", before))


def test_the_aio_zuul_loads_this_repositorys_zuul_d_without_errors(alice):
    assert review.zuul("config-errors") == []
    loaded = {job["name"] for job in review.zuul("jobs")}
    jobs, projects = plan.load_zuul_dir(alice.path / "zuul.d")
    deploy_jobs = {name for name, _ in plan.pipeline_jobs(projects, "deploy", jobs)}
    assert deploy_jobs and deploy_jobs <= loaded
    project = review.zuul(f"project/{review.PROJECT}")
    pipelines = {p["name"] for config in project["configs"] for p in config["pipelines"]}
    assert {"check", "gate", "review", "deploy", "periodic"} <= pipelines


def test_a_broken_playbook_fails_alone_its_dependents_skip_and_the_rest_applies(alice, original):
    """mirror vars broken: deploy-mirror fails, deploy-etherpad (after it) is
    skipped, deploy-bastion (independent of it) is applied."""
    title_before = served_title(120)
    change = both(set_line("inventory/aio/group_vars/mirror.yaml", "mirror_cache_max_size", "lots"),
                  set_line(TITLE_FILE, "etherpad_title", "never served"),
                  set_line("inventory/aio/group_vars/bastion.yaml", "bastion_log_retention_days", "91"))
    number, planned, _ = merge(alice, "Break the mirror's variables, rename the pad, keep logs a day longer",
                               change)
    expected = {"deploy-mirror": "FAILURE", "deploy-etherpad": "SKIPPED", "deploy-bastion": "SUCCESS"}
    assert planned == set(expected)
    deploys = wait(lambda: review.buildsets("deploy", number), TIMEOUT, "the deploy buildset")
    assert review.results(deploys[0]) == expected
    assert served_title(120) == title_before
    assert " 91d" in retention()
    builds = review.zuul(f"buildset/{deploys[0]['uuid']}")["builds"]
    failed = next(b for b in builds if b["job_name"] == "deploy-mirror")
    # Published: the run's summary only. The logs and the ARA record stay on
    # the bastion, the deploy group's.
    published = f"/srv/zuul-logs/{failed['uuid']}"
    said = json.loads(review.sh("docker", "exec", review.ZUUL, "cat", f"{published}/deploy-summary.json"))
    assert said["playbook"] == "service-mirror.yaml" and said["exit"] != 0
    results = [(r["playbook"], r["status"]) for r in said["summary"]["results"]]
    assert results == [("service-mirror.yaml", "failed")]
    files = review.sh("docker", "exec", review.ZUUL, "find", published, "-type", "f").split()
    assert not [f for f in files if "ara" in f or f.endswith("-service-mirror.log")], files
    run = said["logs"]
    report = review.sh("docker", "exec", BASTION, "cat", f"{run}/ara-report/index.html")
    assert "service-mirror.yaml" in report
    assert review.sh("docker", "exec", BASTION, "stat", "-c", "%U:%G %A", run).split() == [
        "devinfra-deploy:devinfra-deploy", "drwxrws---"]


def test_no_secret_reaches_a_published_deploy_log():
    """Every file every deploy build published is searched for every test secret value."""
    builds = review.zuul("builds?pipeline=deploy&limit=50")
    assert builds, "no deploy build to search (the tests above make some)"
    found = review.published_secrets([b["uuid"] for b in builds])
    assert found == [], f"test secrets in published deploy logs: {found}"
