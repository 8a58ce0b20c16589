"""playbooks/manage-projects.yaml against the Gerrit CONTRACT DOUBLE.

The double answers the documented REST endpoints the modules use; it is not
a Gerrit. This proves the playbook drives the modules from the projects
file and renders the Zuul tenant; it proves nothing about a real Gerrit.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.gerrit_double import GerritDouble

ROOT = Path(__file__).resolve().parents[2]
PROJECTS = yaml.safe_load((ROOT / "projects/projects.yaml").read_text())


@pytest.fixture
def gerrit():
    with GerritDouble(username="admin", password="secret") as double:
        if double.group("Service Users") is None:
            double.add_group("Service Users")
        yield double


@pytest.fixture
def inventory(tmp_path, gerrit):
    path = tmp_path / "hosts.yaml"
    path.write_text(yaml.safe_dump({"all": {
        "vars": {"projects_gerrit_url": gerrit.url, "projects_gerrit_username": "admin",
                 "projects_gerrit_password": "secret"},
        "children": {"zuul": {"hosts": {"zuul-test": {
            "ansible_connection": "local", "ansible_python_interpreter": sys.executable}}}},
    }}))
    return path


def run_playbook(inventory, *args):
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    run = subprocess.run(["ansible-playbook", "-i", str(inventory), "playbooks/manage-projects.yaml", *args],
                         cwd=ROOT, env=env, capture_output=True, text=True, check=False, timeout=300)
    recap = {h: int(c) for h, c in re.findall(r"^(\S+)\s+: ok=\d+\s+changed=(\d+)", run.stdout, re.M)}
    return run, recap


def test_projects_groups_acls_and_tenant_are_applied_then_idempotent(gerrit, inventory, tmp_path):
    run, recap = run_playbook(inventory)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    for entry in PROJECTS:
        stored = gerrit.projects[entry["project"]]
        assert stored["description"] == entry.get("description", "")
    core = gerrit.group("infra-core")
    assert core is not None
    access = gerrit.projects["devinfra/system-config"]["access"]
    assert "refs/heads/*" in access and "refs/for/refs/heads/*" in access

    again, recap = run_playbook(inventory)
    assert again.returncode == 0, again.stdout[-4000:]
    assert recap == {"localhost": 0}, again.stdout[-4000:]


def test_check_mode_writes_nothing(gerrit, inventory, tmp_path):
    run, recap = run_playbook(inventory, "--check")
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert recap["localhost"] > 0
    assert gerrit.writes() == []
    assert "devinfra/system-config" not in gerrit.projects


def test_a_bad_projects_entry_fails_before_any_write(gerrit, inventory, tmp_path, monkeypatch):
    bad = tmp_path / "projects"
    (bad / "acls").mkdir(parents=True)
    for acl in (ROOT / "projects/acls").glob("*.yaml"):
        (bad / "acls" / acl.name).write_text(acl.read_text())
    (bad / "projects.yaml").write_text(yaml.safe_dump(PROJECTS + [{"project": "x/y.git"}]))
    run, _ = run_playbook(inventory, "-e", f"manage_projects_dir={bad}")
    assert run.returncode != 0
    assert "projects[4] (x/y.git): project name 'x/y.git' is not a valid Gerrit project name" in run.stdout
    assert gerrit.writes() == []
