"""roles/bastion/files/devinfra-deploy-merged: what CI may run on the bastion, and only that."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "roles" / "bastion" / "files" / "devinfra-deploy-merged"

# A stand-in for `python -m devinfra deploy` in the deployed commit: it says
# which commit's code ran and writes a run directory like the real one.
FAKE_DEVINFRA = '''
import json, pathlib, sys
marker = pathlib.Path("marker.txt").read_text().strip()
run = pathlib.Path(sys.argv[0]).resolve().parents[1] / ".." / "run"
run = run.resolve()
run.mkdir(exist_ok=True)
summary = {"results": [{"playbook": sys.argv[sys.argv.index("--playbooks") + 1], "status": "ok"}]}
(run / "summary.json").write_text(json.dumps(summary))
if "--summary-file" in sys.argv:
    path = pathlib.Path(sys.argv[sys.argv.index("--summary-file") + 1])
    path.write_text(json.dumps(dict(summary, logs=str(run))))
print("deploying", sys.argv[1:], "with the code of", marker)
# A line that looks like the log directory's, printed by a playbook, say: not read.
print("logs: /etc")
'''


def sh(*args, cwd):
    return subprocess.run(args, cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def review(tmp_path):
    """A review server's repository: master with two commits, an unmerged branch."""
    work = tmp_path / "work"
    work.mkdir()
    sh("git", "init", "-q", "-b", "master", cwd=work)
    sh("git", "config", "user.email", "t@example.org", cwd=work)
    sh("git", "config", "user.name", "t", cwd=work)
    (work / "devinfra").mkdir()
    (work / "devinfra" / "__init__.py").write_text("")
    (work / "devinfra" / "__main__.py").write_text(FAKE_DEVINFRA)
    (work / "playbooks").mkdir()
    (work / "playbooks" / "service-etherpad.yaml").write_text("---\n")
    for marker in ("first", "merged"):
        (work / "marker.txt").write_text(marker + "\n")
        sh("git", "add", "-A", cwd=work)
        sh("git", "commit", "-qm", marker, cwd=work)
    sh("git", "checkout", "-qb", "proposed", cwd=work)
    (work / "marker.txt").write_text("unreviewed\n")
    sh("git", "commit", "-qam", "unreviewed", cwd=work)
    sh("git", "checkout", "-q", "master", cwd=work)
    bare = tmp_path / "review.git"
    sh("git", "clone", "-q", "--bare", str(work), str(bare), cwd=tmp_path)
    settings = tmp_path / "deploy-merged.json"
    settings.write_text(json.dumps({"repository": str(bare), "branch": "master",
                                    "checkout": str(tmp_path / "deploy" / "system-config")}))
    return tmp_path, settings


def run(settings, *argv):
    env = dict(os.environ, DEVINFRA_DEPLOY_MERGED_SETTINGS=str(settings))
    return subprocess.run([sys.executable, str(SCRIPT), *argv], capture_output=True, text=True, env=env,
                          check=False)


def summary(proc):
    last = proc.stdout.strip().splitlines()[-1]
    assert last.startswith("devinfra-deploy-merged: {"), proc.stdout
    return json.loads(last.split(" ", 1)[1])


def test_the_tip_of_the_deploy_branch_is_deployed_with_its_own_code(review):
    tmp, settings = review
    proc = run(settings, "service-etherpad.yaml")
    assert proc.returncode == 0, proc.stderr
    assert "with the code of merged" in proc.stdout
    said = summary(proc)
    assert said["playbook"] == "service-etherpad.yaml" and said["exit"] == 0
    assert said["summary"] == {"results": [{"playbook": "service-etherpad.yaml", "status": "ok"}]}
    # The log directory comes from the summary file, not from a line of the output.
    assert said["logs"] == str(tmp / "deploy" / "run"), said


def test_what_was_left_in_the_checkout_does_not_run(review):
    tmp, settings = review
    assert run(settings, "service-etherpad.yaml").returncode == 0
    checkout = tmp / "deploy" / "system-config"
    (checkout / "marker.txt").write_text("tampered\n")
    (checkout / "devinfra" / "extra.py").write_text("raise SystemExit('left behind')\n")
    proc = run(settings, "service-etherpad.yaml")
    assert "with the code of merged" in proc.stdout
    assert not (checkout / "devinfra" / "extra.py").exists()


@pytest.mark.parametrize("argv", [
    [], ["a.yaml", "b.yaml"], ["../../etc/passwd"], ["--help"], ["-x.yaml"], ["playbooks/base.yaml"],
    ["service-etherpad.yaml; id"], ["Service.yaml"],
])
def test_anything_but_one_playbook_name_is_refused_before_git_runs(review, argv):
    tmp, settings = review
    proc = run(settings, *argv)
    assert proc.returncode == 2 and "refused" in proc.stderr
    assert not (tmp / "deploy").exists()


def test_a_playbook_the_branch_does_not_have_is_refused(review):
    tmp, settings = review
    proc = run(settings, "steal.yaml")
    assert proc.returncode == 2
    assert "playbooks/steal.yaml is not in master" in proc.stderr


def test_bad_settings_are_refused_clearly(review):
    tmp, settings = review
    settings.write_text(json.dumps({"repository": "x", "branch": "--upload-pack=evil", "checkout": "/tmp/x"}))
    proc = run(settings, "service-etherpad.yaml")
    assert proc.returncode == 2 and "is not a branch name" in proc.stderr
    settings.write_text("{")
    proc = run(settings, "service-etherpad.yaml")
    assert proc.returncode == 2 and "cannot read the bastion's settings" in proc.stderr
