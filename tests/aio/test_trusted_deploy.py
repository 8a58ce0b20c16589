"""Only reviewed, merged code reaches the bastion (issue: trusted continuous deployment).

bob proposes, on sandbox/sandbox (an untrusted project of the AIO's tenant,
as every project but the config projects is in production), jobs that ask
for the bastion: a nodeset with a `bastion` label (no label names it), and
children of the trusted devinfra-deploy that would get its secret (one
with its own playbook, one with the parent's; the job is post-review, so
Zuul refuses them in check). Nothing of either runs on the bastion: no
file written there, no deploy started, no secret in what they published. Runs against a
deployed AIO (`make aio`); skipped, with the reason, when there is none.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import review
from review import Contributor, wait

NOT_TESTABLE = review.not_testable()
pytestmark = pytest.mark.skipif(bool(NOT_TESTABLE), reason=f"AIO not testable: {NOT_TESTABLE}")
SANDBOX = "sandbox/sandbox"
BASTION = "devinfra-aio-bastion01"
MARKER = "/tmp/devinfra-stolen"
CHECK_TIMEOUT = 900

HARMLESS_JOB = """\
- job:
    name: harmless
    run: harmless.yaml
"""


def with_harmless_job(jobs: str, names: list[str]) -> str:
    """A .zuul.yaml: <jobs>, a harmless job, and a check stanza running <names> and it."""
    listed = "".join(f"        - {name}\n" for name in [*names, "harmless"])
    return f"{jobs}{HARMLESS_JOB}- project:\n    check:\n      jobs:\n{listed}"


BASTION_NODE_JOBS = with_harmless_job("""\
- job:
    name: steal-on-the-bastion-node
    nodeset:
      nodes:
        - {name: bastion, label: bastion}
    run: steal.yaml
""", ["steal-on-the-bastion-node"])
DEPLOY_SECRET_JOBS = with_harmless_job("""\
- job:
    name: steal-with-the-deploy-secret
    parent: devinfra-deploy
    run: steal.yaml
- job:
    name: deploy-from-a-proposed-change
    parent: devinfra-deploy
    vars:
      devinfra_deploy_playbook: base.yaml
""", ["steal-with-the-deploy-secret", "deploy-from-a-proposed-change"])
STEAL_YAML = f"""\
- hosts: all
  tasks:
    - name: Leave a mark where this ran
      ansible.builtin.shell: hostname > {MARKER}; cat /etc/devinfra/private/group_vars/*.yaml || true
    - name: Show the secret if there is one
      ansible.builtin.debug:
        var: devinfra_bastion
"""
HARMLESS_YAML = """\
- hosts: all
  tasks:
    - name: Run on the build node
      ansible.builtin.command: hostname
"""


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    """sandbox/sandbox with a first commit (alice, its core, pushes it), and bob's fork."""
    alice = Contributor("alice", tmp_path_factory.mktemp("alice"), fork=False, project=SANDBOX)
    if not alice.git("ls-remote", "origin", "master").strip():
        (alice.path / "README").write_text("The sandbox: try Zuul jobs here.\n")
        alice.git("add", "README")
        alice.git("commit", "-qm", "Start the sandbox")
        alice.git("push", "-q", "origin", "HEAD:master")
    # Zuul learns a new project's branches when it reloads the tenant.
    review.sh("docker", "exec", "-u", "zuul", review.ZUUL, "/opt/zuul/bin/zuul-scheduler",
              "tenant-reconfigure", review.TENANT)
    time.sleep(30)
    return Contributor("bob", tmp_path_factory.mktemp("bob"), fork=True, project=SANDBOX)


def propose_jobs(sandbox: Contributor, title: str, zuul_yaml: str) -> tuple[dict, dict]:
    """bob's pull request adding these jobs; its finished check buildset and {job: result}."""
    def change(tree: Path) -> None:
        (tree / ".zuul.yaml").write_text(zuul_yaml)
        (tree / "steal.yaml").write_text(STEAL_YAML)
        (tree / "harmless.yaml").write_text(HARMLESS_YAML)
        sandbox.git("add", ".zuul.yaml", "steal.yaml", "harmless.yaml")

    number, _ = sandbox.propose(title, change)
    query = f"buildsets?project={SANDBOX}&change={number}&pipeline=check"
    [buildset, *_] = wait(lambda: [b for b in review.zuul(query) if b.get("result")], CHECK_TIMEOUT,
                          f"the check of {SANDBOX} pull request {number}")
    full = review.zuul(f"buildset/{buildset['uuid']}")
    return full, {b["job_name"]: b["result"] for b in full.get("builds", [])}


def deploy_runs() -> list[str]:
    return review.sh("docker", "exec", BASTION, "ls", "/var/log/devinfra-deploy").split()


def nothing_ran_on_the_bastion() -> bool:
    time.sleep(5)
    marked = review.sh("docker", "exec", BASTION, "sh", "-c", f"test -e {MARKER} && echo yes || echo no")
    return marked.strip() == "no"


def test_no_proposed_job_gets_the_bastion_as_its_node(sandbox):
    review.sh("docker", "exec", BASTION, "rm", "-f", MARKER)
    full, results = propose_jobs(sandbox, "Ask for the bastion as a node", BASTION_NODE_JOBS)
    # No label names the bastion: the change's configuration is refused, or the job gets no node.
    assert full["result"] != "SUCCESS" and results.get("steal-on-the-bastion-node") != "SUCCESS", (
        full["result"], full.get("message"), results)
    assert nothing_ran_on_the_bastion(), "a job of the proposed change ran on the bastion"


def test_no_proposed_job_gets_the_deploy_secret_or_starts_a_deploy(sandbox):
    review.sh("docker", "exec", BASTION, "rm", "-f", MARKER)
    runs_before = deploy_runs()
    full, results = propose_jobs(sandbox, "Inherit the deploy job", DEPLOY_SECRET_JOBS)
    # devinfra-deploy is post-review: Zuul refuses to freeze a check job
    # graph holding its children, so none of the change's jobs runs.
    assert full["result"] == "CONFIG_ERROR", (full["result"], full.get("message"), results)
    assert "Pre-review pipeline check does not allow post-review job" in full["message"]
    assert not [job for job, result in results.items() if result == "SUCCESS"], results
    assert nothing_ran_on_the_bastion(), "a job of the proposed change ran on the bastion"
    assert deploy_runs() == runs_before, "a deploy started"
    # Nothing it published holds the deploy key or any other test secret.
    found = review.published_secrets([b["uuid"] for b in full.get("builds", [])])
    assert found == [], f"test secrets in what the change's builds published: {found}"
