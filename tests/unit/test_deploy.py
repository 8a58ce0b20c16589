"""devinfra deploy: lock, disable file, disabled group, logs, skipped dependents, exit codes."""

import json
import multiprocessing
import os
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from devinfra import cli, deploy, plan

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def site(tmp_path):
    """A fake ansible-playbook and the paths a deploy uses."""
    fake = tmp_path / "ansible-playbook"
    fake.write_text(textwrap.dedent(f"""\
        #!/bin/sh
        echo "$@" >> {tmp_path}/calls
        for arg; do last=$arg; done
        echo "PLAY RECAP for $last"
        [ -e {tmp_path}/slow ] && sleep 3
        case " $(cat {tmp_path}/fail 2>/dev/null) " in *" $last "*) exit 2 ;; esac
        exit 0
        """))
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    return tmp_path


def run(site, *args):
    return cli.main(["deploy", "--repo", str(ROOT), "--ansible-playbook", str(site / "ansible-playbook"),
                     "--log-dir", str(site / "logs"), "--lock-file", str(site / "lock"),
                     "--disable-file", str(site / "DISABLE"), "-i", "inv", *args])


def calls(site):
    path = site / "calls"
    return [line.split()[-1] for line in path.read_text().splitlines()] if path.exists() else []


def test_named_playbooks_run_in_dependency_order_with_logs(site, capsys):
    assert run(site, "--playbooks", "service-etherpad.yaml", "base.yaml") == 0
    assert calls(site) == ["playbooks/base.yaml", "playbooks/service-etherpad.yaml"]
    line = (site / "calls").read_text().splitlines()[0]
    assert "-i inv --limit localhost:all:!disabled" in line
    out = capsys.readouterr().out
    assert "[1/2] base.yaml: OK" in out and "2 ok, 0 failed, 0 skipped" in out
    run_dir = next((site / "logs").iterdir())
    assert "PLAY RECAP for playbooks/base.yaml" in (run_dir / "01-base.log").read_text()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert [r["status"] for r in summary] == ["ok", "ok"]


def test_a_failure_skips_its_dependents_but_not_the_others(site, capsys):
    (site / "fail").write_text("playbooks/service-mirror.yaml")
    steps = [plan.Step("deploy-mirror", "service-mirror.yaml", "", []),
             plan.Step("deploy-zuul", "service-zuul.yaml", "", ["deploy-mirror"]),
             plan.Step("deploy-review", "service-review.yaml", "", []),
             plan.Step("deploy-x", "x.yaml", "", ["deploy-zuul"])]
    code = deploy.deploy(steps, repo=ROOT, inventories=["inv"], log_root=site / "logs",
                         lock_file=site / "lock", lock_timeout=5, disable_file=site / "DISABLE",
                         ansible_playbook=str(site / "ansible-playbook"))
    assert code == deploy.EXIT_FAILED
    assert calls(site) == ["playbooks/service-mirror.yaml", "playbooks/service-review.yaml"]
    out = capsys.readouterr().out
    assert "service-zuul.yaml: SKIPPED (deploy-mirror failed)" in out
    assert "x.yaml: SKIPPED (deploy-zuul failed)" in out
    assert "1 ok, 1 failed, 2 skipped" in out


def test_the_disable_file_stops_everything_and_says_why(site, capsys):
    (site / "DISABLE").write_text("migrating the database, ask alice\n")
    assert run(site, "--playbooks", "base.yaml") == deploy.EXIT_DISABLED
    assert calls(site) == []
    assert "migrating the database, ask alice" in capsys.readouterr().err


def _hold_the_lock(lock, ready):
    with deploy.Lock(Path(lock), 5):
        ready.set()
        time.sleep(3)


def test_a_second_deploy_waits_for_the_lock_then_gives_up(site, capsys):
    ready = multiprocessing.Event()
    holder = multiprocessing.Process(target=_hold_the_lock, args=(str(site / "lock"), ready))
    holder.start()
    try:
        assert ready.wait(10)
        start = time.monotonic()
        assert run(site, "--lock-timeout", "1", "--playbooks", "base.yaml") == deploy.EXIT_LOCKED
        assert 0.9 < time.monotonic() - start < 3
        err = capsys.readouterr().err
        assert "another deploy holds" in err and f"pid {holder.pid}" in err and "gave up after 1 s" in err
        assert calls(site) == []
        # With a longer limit it waits for the holder and then runs.
        assert run(site, "--lock-timeout", "10", "--playbooks", "base.yaml") == 0
        assert "waiting for the deploy lock" in capsys.readouterr().out
        assert calls(site) == ["playbooks/base.yaml"]
    finally:
        holder.join(10)


def test_a_range_deploys_what_the_plan_selects(site, capsys):
    # HEAD~1..HEAD of this repository: whatever plan says, deploy runs the same list.
    files = plan.changed_files(ROOT, "HEAD~1..HEAD")
    expected = [f"playbooks/{s.playbook}" for s in plan.plan(ROOT / "zuul.d", files)]
    assert run(site, "HEAD~1..HEAD") == 0
    assert calls(site) == expected


def test_unknown_playbooks_and_bad_arguments_are_explained(site, capsys):
    assert run(site, "--playbooks", "nope.yaml") == 1
    assert "no deploy job applies nope.yaml" in capsys.readouterr().err
    assert run(site) == 1
    assert "give either a range" in capsys.readouterr().err


def _maintenance(tmp_path, name, *extra):
    inventory = tmp_path / "hosts.yaml"
    inventory.write_text(textwrap.dedent(f"""\
        bastion:
          hosts:
            localhost:
              ansible_connection: local
              ansible_python_interpreter: {sys.executable}
        """))
    return subprocess.run(
        ["ansible-playbook", "-i", str(inventory), str(ROOT / f"playbooks/maintenance/{name}"),
         "-e", f"devinfra_deploy_disable_file={tmp_path / 'DISABLE'}", *extra],
        capture_output=True, text=True, check=False, env=dict(os.environ, ANSIBLE_NOCOLOR="1"))


def test_maintenance_playbooks_disable_and_enable_deploys(site, capsys):
    # No reason, no change.
    run_ = _maintenance(site, "disable-deploys.yaml")
    assert run_.returncode != 0 and "give the reason" in run_.stdout + run_.stderr
    assert not (site / "DISABLE").exists()
    run_ = _maintenance(site, "disable-deploys.yaml", "-e", "devinfra_deploy_disable_reason='db migration'")
    assert run_.returncode == 0, run_.stdout[-2000:]
    assert (site / "DISABLE").read_text().startswith("db migration (by ")
    assert run(site, "--playbooks", "base.yaml") == deploy.EXIT_DISABLED
    assert "db migration" in capsys.readouterr().err
    run_ = _maintenance(site, "enable-deploys.yaml")
    assert run_.returncode == 0, run_.stdout[-2000:]
    assert "Deploys were disabled: db migration" in run_.stdout
    assert not (site / "DISABLE").exists()
    assert run(site, "--playbooks", "base.yaml") == 0
