"""make check: the check jobs zuul.d selects for the working tree's changes."""

import subprocess
import textwrap
from pathlib import Path

import pytest

from devinfra import plan

ROOT = Path(__file__).resolve().parents[2]
ZUUL_D = ROOT / "zuul.d"


def scenarios(*files):
    return plan.check_selection(ZUUL_D, list(files)).scenarios


def check_jobs():
    jobs, projects = plan.load_zuul_dir(ZUUL_D)
    return dict(plan.pipeline_jobs(projects, "check", jobs))


def test_every_scenario_has_a_check_job_and_every_molecule_job_a_scenario():
    in_tree = {p.parent.name for p in (ROOT / "molecule").glob("*/molecule.yml")}
    in_zuul = {(attrs.get("vars") or {}).get("devinfra_molecule_scenario")
               for attrs in check_jobs().values()} - {None}
    assert in_zuul == in_tree


def test_the_gate_runs_what_check_runs():
    _, projects = plan.load_zuul_dir(ZUUL_D)
    project = projects[0]
    assert project["gate"]["jobs"] == project["check"]["jobs"]


def test_no_tracked_file_is_a_hole_in_zuul_d():
    tracked = subprocess.run(["git", "-C", str(ROOT), "ls-files"], capture_output=True, text=True,
                             check=True).stdout.split()
    assert plan.check_selection(ZUUL_D, tracked).uncovered == []


@pytest.mark.parametrize(("path", "expected"), [
    ("roles/webfront/templates/nginx.conf.j2",
     ["webfront", "gerrit", "zuul", "etherpad", "pagure", "monitoring", "mirror"]),
    ("roles/prometheus/files/rules/devinfra.yaml", ["monitoring"]),
    ("tests/prometheus/devinfra_test.yaml", ["monitoring"]),
    ("roles/zookeeper/tasks/main.yaml", ["zuul"]),
    ("molecule/zuul/tests/test_zookeeper.py", ["zuul"]),
    ("playbooks/maintenance/rolling-reboot.yaml", ["base"]),
    ("roles/mirror_update/tasks/main.yaml", ["mirror_update"]),
    ("README.md", []),
    ("devinfra/plan.py", []),
])
def test_a_change_selects_the_scenarios_of_what_it_touches(path, expected):
    assert sorted(scenarios(path)) == sorted(expected)


def test_a_shared_file_selects_every_scenario():
    every = {p.parent.name for p in (ROOT / "molecule").glob("*/molecule.yml")}
    assert set(scenarios("molecule/shared/devinfra_molecule.py")) == every
    assert set(scenarios("tools/run-tests.py")) == every


def test_no_change_selects_no_job():
    selection = plan.check_selection(ZUUL_D, [])
    assert (selection.jobs, selection.scenarios, selection.uncovered) == ([], [], [])


def test_a_file_no_matcher_covers_is_reported(tmp_path):
    zuul_d = tmp_path / "zuul.d"
    zuul_d.mkdir()
    (zuul_d / "jobs.yaml").write_text(textwrap.dedent("""\
        - job: {name: lint, irrelevant-files: ['.*\\.md$']}
        - job: {name: mol-a, files: ['^roles/a/'], vars: {devinfra_molecule_scenario: a}}
        - project:
            check: {jobs: [lint, mol-a]}
        """))
    selection = plan.check_selection(zuul_d, ["roles/a/x.yaml", "roles/b/y.yaml", "doc.md"])
    assert selection.scenarios == ["a"]
    assert selection.jobs == ["lint", "mol-a"]
    # doc.md is declared irrelevant; roles/b is matched by no job's files.
    assert selection.uncovered == ["roles/b/y.yaml"]


def git(repo, *args):
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


def test_working_tree_files_are_modified_staged_renamed_deleted_and_untracked(tmp_path):
    git(tmp_path, "init", "-q")
    for name in ("kept", "edited", "moved", "gone"):
        (tmp_path / name).write_text(name)
    git(tmp_path, "add", "-A")
    git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@example.test", "commit", "-qm", "init")
    assert plan.working_tree_files(tmp_path) == []
    (tmp_path / "edited").write_text("changed")
    (tmp_path / "dir with space").mkdir()
    git(tmp_path, "mv", "moved", "dir with space/moved")
    (tmp_path / "gone").unlink()
    (tmp_path / "new").write_text("new")
    assert plan.working_tree_files(tmp_path) == ["dir with space/moved", "edited", "gone", "moved", "new"]


def test_working_tree_files_outside_a_repository_is_a_clear_error(tmp_path):
    with pytest.raises(plan.PlanError, match="git status failed"):
        plan.working_tree_files(tmp_path)
