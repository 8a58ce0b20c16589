"""roles/bastion/files/devinfra-deploy-merged: what CI may run on the bastion, and only that."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "roles" / "bastion" / "files" / "devinfra-deploy-merged"

# A stand-in for `python -m devinfra deploy` in the deployed commit: it says
# which commit's code ran and writes a run directory like the real one.
# FAKE_DEPLOY_DISABLED: it does not run (exit 3, no summary), as when
# disabled; FAKE_DEPLOY_FAILED: the playbook fails. Its `status-page` writes
# its arguments into status-page.json of the run directory and exits
# FAKE_STATUS_PAGE_EXIT; its `publish-status` likewise (publish-status.json,
# FAKE_PUBLISH_EXIT).
FAKE_DEVINFRA = '''
import json, os, pathlib, sys
marker = pathlib.Path("marker.txt").read_text().strip()
run = pathlib.Path(sys.argv[0]).resolve().parents[1] / ".." / "run"
run = run.resolve()
run.mkdir(exist_ok=True)
if sys.argv[1] == "status-page":
    (run / "status-page.json").write_text(json.dumps(sys.argv[1:]))
    print("devinfra: error: the status page broke", file=sys.stderr)
    sys.exit(int(os.environ.get("FAKE_STATUS_PAGE_EXIT", "0")))
if sys.argv[1] == "publish-status":
    (run / "publish-status.json").write_text(json.dumps(sys.argv[1:]))
    print("fatal: [monitor01]: UNREACHABLE!", file=sys.stderr)
    sys.exit(int(os.environ.get("FAKE_PUBLISH_EXIT", "0")))
# A line that looks like the log directory's, printed by a playbook, say: never read.
print("logs: /etc")
if os.environ.get("FAKE_DEPLOY_DISABLED"):
    print("devinfra: error: deploys are disabled by /etc/devinfra/DISABLE-DEPLOY: drill", file=sys.stderr)
    sys.exit(3)
failed = bool(os.environ.get("FAKE_DEPLOY_FAILED"))
result = {"playbook": sys.argv[sys.argv.index("--playbooks") + 1], "job": "deploy-etherpad",
          "status": "failed" if failed else "ok", "seconds": 12.5, "reason": "exit 2" if failed else ""}
summary = {"results": [result]}
(run / "summary.json").write_text(json.dumps(summary))
if "--summary-file" in sys.argv:
    path = pathlib.Path(sys.argv[sys.argv.index("--summary-file") + 1])
    path.write_text(json.dumps(dict(summary, logs=str(run))))
print("deploying", sys.argv[1:], "with the code of", marker)
sys.exit(1 if failed else 0)
'''
OK_RESULT = {"playbook": "service-etherpad.yaml", "job": "deploy-etherpad", "status": "ok",
             "seconds": 12.5, "reason": ""}


def sh(*args, cwd, env=None):
    return subprocess.run(args, cwd=cwd, check=True, capture_output=True, text=True,
                          env=env).stdout.strip()


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


def run(settings, *argv, **environ):
    env = dict(os.environ, DEVINFRA_DEPLOY_MERGED_SETTINGS=str(settings), **environ)
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
    assert said["summary"] == {"results": [OK_RESULT]}
    # The log directory comes from the summary file, not from a line of the output.
    assert said["logs"] == str(tmp / "deploy" / "run"), said
    # No history in the settings: nothing recorded, no status page.
    assert not (tmp / "deploy" / "run" / "status-page.json").exists()


def test_the_log_directory_comes_from_the_summary_file_never_from_the_output(review):
    tmp, settings = review
    proc = run(settings, "service-etherpad.yaml")
    assert "logs: /etc" in proc.stdout
    said = summary(proc)
    assert said["logs"] == str(tmp / "deploy" / "run") and "logs" not in said["summary"]
    # No summary file (the deploy did not run): no log directory, whatever the output says.
    proc = run(settings, "service-etherpad.yaml", FAKE_DEPLOY_DISABLED="1")
    assert proc.returncode == 3 and "logs: /etc" in proc.stdout
    assert summary(proc)["logs"] is None and summary(proc)["summary"] is None


def test_the_checkouts_devinfra_runs_with_the_python_of_the_settings(review):
    """The bastion's is its deploy virtualenv's, where devinfra's requirements (google-re2) are."""
    tmp, settings = review
    python = tmp / "venv-python"
    python.write_text(f'#!/bin/sh\necho "$@" >> {tmp}/python-calls\nexec {sys.executable} "$@"\n')
    python.chmod(0o755)
    configure(settings, python=str(python), history=str(tmp / "history.jsonl"), textfile=str(tmp / "m.prom"))
    proc = run(settings, "service-etherpad.yaml")
    assert proc.returncode == 0, proc.stderr
    calls = (tmp / "python-calls").read_text().splitlines()
    assert [call.split()[:3] for call in calls] == [["-m", "devinfra", "deploy"],
                                                    ["-m", "devinfra", "status-page"]]
    configure(settings, python=str(tmp / "missing-python"))
    proc = run(settings, "service-etherpad.yaml")
    assert proc.returncode == 2 and f"python {tmp / 'missing-python'} is not an executable" in proc.stderr


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


# The deploy history, the status page and the metrics.

MERGED_AT = 1700000000


def merge(tmp, message):
    """A commit merged into the review server's master at MERGED_AT (its committer time)."""
    work = tmp / "work"
    env = dict(os.environ, GIT_COMMITTER_DATE=f"@{MERGED_AT} +0000")
    sh("git", "commit", "-q", "--allow-empty", "-m", message, cwd=work, env=env)
    sh("git", "push", "-q", str(tmp / "review.git"), "master", cwd=work)
    return sh("git", "rev-parse", "HEAD", cwd=work)


@pytest.fixture
def recording(review):
    """The review server, and settings with a history, a status page and a textfile."""
    tmp, settings = review
    paths = {"history": str(tmp / "log" / "history.jsonl"), "status_dir": str(tmp / "status"),
             "textfile": str(tmp / "metrics" / "devinfra-deploy.prom")}
    (tmp / "log").mkdir()
    configure(settings, **paths)
    return tmp, settings, paths


def configure(settings, **changes):
    settings.write_text(json.dumps({**json.loads(settings.read_text()), **changes}))


def history(paths):
    return [json.loads(line) for line in Path(paths["history"]).read_text().splitlines()]


def status_page_call(tmp):
    """The arguments `devinfra status-page` last ran with, None if it did not run."""
    called = tmp / "deploy" / "run" / "status-page.json"
    return json.loads(called.read_text()) if called.exists() else None


def test_a_pagure_merge_is_recorded_and_the_status_page_made(recording):
    tmp, settings, paths = recording
    commit = merge(tmp, "Merge #12 `Pin <script>alert(1)</script> 2.0`\n\nThe pull request's text.")
    before = time.time()
    proc = run(settings, "service-etherpad.yaml")
    after = time.time()
    assert proc.returncode == 0, proc.stderr
    assert summary(proc)["commit"] == commit
    [record] = history(paths)
    assert {k: record[k] for k in OK_RESULT} == OK_RESULT
    assert record["commit"] == commit
    assert record["subject"] == "Merge #12 `Pin <script>alert(1)</script> 2.0`"
    assert record["change"] == "#12 Pin <script>alert(1)</script> 2.0"
    assert "change_url" not in record
    assert record["merged_at"] == MERGED_AT
    assert before - 0.1 <= record["started_at"] <= record["finished_at"] <= after + 0.1
    assert record["merge_to_applied"] == round(record["finished_at"] - MERGED_AT, 1)
    assert status_page_call(tmp) == ["status-page", "--history", paths["history"],
                                     "--out", paths["status_dir"], "--textfile", paths["textfile"]]


def test_a_gerrit_change_is_linked_and_a_failed_run_recorded(recording):
    tmp, settings, paths = recording
    url = "https://review.example.org/c/system-config/+/42"
    commit = merge(tmp, f"Pin etherpad\n\nWhy.\n\nChange-Id: I0123456789abcdef\nReviewed-on: {url}\n")
    proc = run(settings, "service-etherpad.yaml", FAKE_DEPLOY_FAILED="1")
    assert proc.returncode == 1
    [record] = history(paths)
    assert record["commit"] == commit and record["subject"] == "Pin etherpad"
    assert record["change"] == "Pin etherpad" and record["change_url"] == url
    assert record["status"] == "failed" and record["reason"] == "exit 2"
    assert status_page_call(tmp) is not None


def test_a_plain_commit_is_its_own_change_and_each_run_is_appended(recording):
    tmp, settings, paths = recording
    merge(tmp, "Pin etherpad")
    assert run(settings, "service-etherpad.yaml").returncode == 0
    assert run(settings, "service-etherpad.yaml").returncode == 0
    records = history(paths)
    assert [(r["change"], r.get("change_url")) for r in records] == [("Pin etherpad", None)] * 2
    assert records[0]["finished_at"] <= records[1]["started_at"]


def test_nothing_is_recorded_when_the_deploy_did_not_run(recording):
    tmp, settings, paths = recording
    proc = run(settings, "service-etherpad.yaml", FAKE_DEPLOY_DISABLED="1")
    assert proc.returncode == 3
    assert summary(proc)["summary"] is None
    assert not Path(paths["history"]).exists()
    assert status_page_call(tmp) is None


def test_the_status_page_runs_for_the_outputs_set_only(recording):
    tmp, settings, paths = recording
    configure(settings, status_dir="", textfile="")
    assert run(settings, "service-etherpad.yaml").returncode == 0
    assert len(history(paths)) == 1
    assert status_page_call(tmp) is None
    configure(settings, textfile=paths["textfile"])
    assert run(settings, "service-etherpad.yaml").returncode == 0
    assert status_page_call(tmp) == ["status-page", "--history", paths["history"],
                                     "--textfile", paths["textfile"]]


def test_a_failed_status_page_is_only_a_warning(recording):
    tmp, settings, paths = recording
    proc = run(settings, "service-etherpad.yaml", FAKE_STATUS_PAGE_EXIT="1")
    assert proc.returncode == 0
    assert ("devinfra-deploy-merged: warning: the status page and metrics were not updated (exit 1): "
            "devinfra: error: the status page broke") in proc.stderr
    assert summary(proc)["exit"] == 0
    assert len(history(paths)) == 1


def test_an_unwritable_history_is_only_a_warning(recording):
    tmp, settings, paths = recording
    configure(settings, history=str(tmp / "missing" / "history.jsonl"))
    proc = run(settings, "service-etherpad.yaml")
    assert proc.returncode == 0
    assert f"warning: the deploy history {tmp / 'missing' / 'history.jsonl'} was not updated" in proc.stderr
    assert summary(proc)["exit"] == 0
    assert status_page_call(tmp) is None


@pytest.mark.parametrize(("before", "after"), [(1099, 1100), (1100, 1000)])
def test_the_history_is_cut_to_its_last_1000_lines_past_1100(recording, before, after):
    tmp, settings, paths = recording
    Path(paths["history"]).write_text("".join(json.dumps({"n": n}) + "\n" for n in range(before)))
    assert run(settings, "service-etherpad.yaml").returncode == 0
    lines = history(paths)
    assert len(lines) == after
    assert lines[0] == {"n": before + 1 - after}
    assert lines[-1]["playbook"] == "service-etherpad.yaml"
    # Cut by a rename: no temporary file is left.
    assert sorted(p.name for p in (tmp / "log").iterdir()) == ["history.jsonl", "history.jsonl.lock"]


@pytest.mark.parametrize(("key", "value"), [("history", ["x"]), ("status_dir", "status"), ("textfile", 1),
                                            ("python", "python3")])
def test_the_optional_settings_must_be_absolute_paths(recording, key, value):
    tmp, settings, paths = recording
    configure(settings, **{key: value})
    proc = run(settings, "service-etherpad.yaml")
    assert proc.returncode == 2 and f"{key} is not an absolute path" in proc.stderr
    assert not (tmp / "deploy").exists()


def published(tmp):
    return (tmp / "deploy" / "run" / "publish-status.json").exists()


def test_the_page_is_published_to_the_monitoring_hosts_when_set_even_after_a_failed_deploy(recording):
    tmp, settings, paths = recording
    merge(tmp, "Pin etherpad")
    assert run(settings, "service-etherpad.yaml").returncode == 0
    assert not published(tmp)
    configure(settings, publish_status=True)
    assert run(settings, "service-etherpad.yaml", FAKE_DEPLOY_FAILED="1").returncode == 1
    assert published(tmp)


def test_a_failed_publication_is_only_a_warning(recording):
    tmp, settings, paths = recording
    configure(settings, publish_status=True)
    proc = run(settings, "service-etherpad.yaml", FAKE_PUBLISH_EXIT="1")
    assert proc.returncode == 0
    assert ("devinfra-deploy-merged: warning: the status page was not published (exit 1): "
            "fatal: [monitor01]: UNREACHABLE!") in proc.stderr
    assert summary(proc)["exit"] == 0
