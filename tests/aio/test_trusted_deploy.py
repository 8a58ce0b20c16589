"""Only reviewed, merged code reaches the bastion (issue: trusted continuous deployment).

bob proposes, on sandbox/sandbox (an untrusted project of the AIO's tenant,
as every project but the config projects is in production), jobs that ask
for the bastion: a nodeset with a `bastion` label, and children of the
trusted devinfra-deploy that would get its secret (one with its own
playbook, one with the parent's). Zuul runs the change's harmless job on
the build node, and nothing of it on the bastion: no file written there,
no deploy started, no secret in what it published. Runs against a
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

ZUUL_YAML = """\
- job:
    name: steal-on-the-bastion-node
    nodeset:
      nodes:
        - {name: bastion, label: bastion}
    run: steal.yaml
- job:
    name: steal-with-the-deploy-secret
    parent: devinfra-deploy
    run: steal.yaml
- job:
    name: deploy-from-a-proposed-change
    parent: devinfra-deploy
    vars:
      devinfra_deploy_playbook: base.yaml
- job:
    name: harmless
    run: harmless.yaml
- project:
    check:
      jobs:
        - steal-on-the-bastion-node
        - steal-with-the-deploy-secret
        - deploy-from-a-proposed-change
        - harmless
"""
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
    return Contributor("bob", tmp_path_factory.mktemp("bob"), fork=True, project=SANDBOX)


def write_jobs(tree: Path) -> None:
    (tree / ".zuul.yaml").write_text(ZUUL_YAML)
    (tree / "steal.yaml").write_text(STEAL_YAML)
    (tree / "harmless.yaml").write_text(HARMLESS_YAML)


def deploy_runs() -> list[str]:
    return review.sh("docker", "exec", BASTION, "ls", "/var/log/devinfra-deploy").split()


def test_a_proposed_change_gets_neither_the_bastion_nor_the_deploy_secret(sandbox):
    review.sh("docker", "exec", BASTION, "rm", "-f", MARKER)
    runs_before = deploy_runs()

    def change(tree):
        write_jobs(tree)
        sandbox.git("add", ".zuul.yaml", "steal.yaml", "harmless.yaml")

    number, _ = sandbox.propose("Try jobs that reach for the bastion", change)
    query = f"buildsets?project={SANDBOX}&change={number}&pipeline=check"
    buildsets = wait(lambda: [b for b in review.zuul(query) if b.get("result")], CHECK_TIMEOUT,
                     f"the check of {SANDBOX} pull request {number}")
    full = review.zuul(f"buildset/{buildsets[0]['uuid']}")
    results = {b["job_name"]: b["result"] for b in full["builds"]}
    # Zuul did run the change's own jobs: the harmless one, on the build node.
    assert results.get("harmless") == "SUCCESS", (full["result"], full.get("message"), results)
    assert buildsets[0]["result"] != "SUCCESS", results
    for job in ("steal-on-the-bastion-node", "steal-with-the-deploy-secret", "deploy-from-a-proposed-change"):
        assert results.get(job) != "SUCCESS", (job, results)
    time.sleep(5)
    marked = review.sh("docker", "exec", BASTION, "sh", "-c", f"test -e {MARKER} && echo yes || echo no")
    assert marked.strip() == "no", "a job of the proposed change ran on the bastion"
    assert deploy_runs() == runs_before
    # Nothing it published holds the deploy key or any other test secret.
    found = review.published_secrets([b["uuid"] for b in full["builds"]])
    assert found == [], f"test secrets in what the change's builds published: {found}"
