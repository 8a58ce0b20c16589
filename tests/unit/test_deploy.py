"""devinfra deploy: lock, disable file, disabled group, logs, skipped dependents, exit codes."""

import contextlib
import json
import multiprocessing
import os
import signal
import sqlite3
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
        echo "$ANSIBLE_CALLBACK_PLUGINS|$ARA_API_CLIENT|$ARA_DATABASE_NAME|$DEVINFRA_MARK" >> {tmp_path}/envs
        echo "strategy=$ANSIBLE_STRATEGY" >> {tmp_path}/strategies
        for arg; do last=$arg; done
        echo "PLAY RECAP for $last"
        [ -e {tmp_path}/slow ] && sleep 3
        case " $(cat {tmp_path}/fail 2>/dev/null) " in *" $last "*) exit 2 ;; esac
        exit 0
        """))
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    return tmp_path


def run(site, *args):
    # --config: never the real /etc/devinfra/deploy.yaml of a bastion these tests may run on.
    return cli.main(["deploy", "--config", str(site / "no-deploy.yaml"), "--repo", str(ROOT),
                     "--ansible-playbook", str(site / "ansible-playbook"),
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
    assert [r["status"] for r in summary["results"]] == ["ok", "ok"]


def test_the_summary_file_gets_the_summary_and_the_log_directory(site):
    assert run(site, "--playbooks", "base.yaml", "--summary-file", str(site / "said.json")) == 0
    said = json.loads((site / "said.json").read_text())
    run_dir = next((site / "logs").iterdir())
    assert said["logs"] == str(run_dir)
    assert said["results"] == json.loads((run_dir / "summary.json").read_text())["results"]


def test_a_disabled_deploy_writes_no_summary_file(site):
    (site / "DISABLE").write_text("maintenance\n")
    code = run(site, "--playbooks", "base.yaml", "--summary-file", str(site / "said.json"))
    assert code == deploy.EXIT_DISABLED
    assert not (site / "said.json").exists()


def test_a_strategy_setting_reaches_every_run_and_none_keeps_ansible_cfgs(site, monkeypatch):
    monkeypatch.delenv("ANSIBLE_STRATEGY", raising=False)
    assert run(site, "--playbooks", "base.yaml") == 0
    assert (site / "strategies").read_text().splitlines() == ["strategy="]
    assert run(site, "--ansible-strategy", "mitogen_linear", "--playbooks", "base.yaml",
               "service-etherpad.yaml") == 0
    assert (site / "strategies").read_text().splitlines()[1:] == ["strategy=mitogen_linear"] * 2


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


@pytest.fixture
def long_deploy(site):
    """start(*playbooks): a `devinfra deploy` process (its own process group) whose
    ansible-playbook runs until killed; returns it and that playbook's pid. The
    playbook writes its pid to `started` and, on SIGTERM, TERM to `got`."""
    fake = site / "long-playbook"
    fake.write_text(textwrap.dedent(f"""\
        #!/bin/sh
        trap 'echo TERM >> {site}/got; kill $sleeper; exit 143' TERM
        sleep 30 &
        sleeper=$!
        echo $$ > {site}/started.tmp && mv {site}/started.tmp {site}/started
        wait $sleeper
        """))
    fake.chmod(0o755)
    started = []

    def start(*playbooks):
        with open(site / "deploy.out", "w") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "devinfra", "deploy", "--config", str(site / "no-deploy.yaml"),
                 "--repo", str(ROOT), "--ansible-playbook", str(fake), "--log-dir", str(site / "logs"),
                 "--lock-file", str(site / "lock"), "--disable-file", str(site / "DISABLE"),
                 "-i", "inv", "--playbooks", *playbooks],
                cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        started.append(proc)
        deadline = time.monotonic() + 30
        while not (site / "started").exists():
            assert proc.poll() is None and time.monotonic() < deadline, (site / "deploy.out").read_text()
            time.sleep(0.05)
        return proc, int((site / "started").read_text())

    yield start
    for proc in started:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


def test_the_lock_outlives_a_killed_deploy_while_its_playbook_runs(site, long_deploy, capsys):
    deployer, playbook = long_deploy("base.yaml")
    deployer.kill()
    deployer.wait(10)
    # Its ansible-playbook still runs, and holds the lock: a second deploy gives up, and
    # says who holds the lock.
    assert run(site, "--lock-timeout", "2", "--playbooks", "base.yaml") == deploy.EXIT_LOCKED
    err = capsys.readouterr().err
    assert f"deploy pid {deployer.pid} (no longer running)" in err, err
    assert f"base.yaml: ansible-playbook pid {playbook} since" in err, err
    assert calls(site) == [] and not (site / "got").exists()
    # Once that playbook has ended, a third deploy takes the lock.
    os.kill(playbook, signal.SIGTERM)
    assert run(site, "--lock-timeout", "20", "--playbooks", "base.yaml") == 0
    assert calls(site) == ["playbooks/base.yaml"]


def test_sigterm_goes_to_the_playbook_and_the_deploy_waits_for_it(site, long_deploy, capsys):
    deployer, playbook = long_deploy("base.yaml", "service-review.yaml")
    deployer.terminate()
    assert deployer.wait(20) == 128 + signal.SIGTERM
    assert (site / "got").read_text() == "TERM\n"
    with pytest.raises(ProcessLookupError):
        os.kill(playbook, 0)  # ended, and reaped by the deploy
    out = (site / "deploy.out").read_text()
    assert "[1/2] base.yaml: FAILED" in out, out
    assert "[2/2] service-review.yaml: SKIPPED (the deploy got SIGTERM)" in out
    assert "stopped by SIGTERM" in out and "Traceback" not in out
    assert [r["status"] for r in summary_of(site)["results"]] == ["failed", "skipped"]
    # Nothing holds the lock any more.
    assert run(site, "--lock-timeout", "5", "--playbooks", "base.yaml") == 0
    assert calls(site) == ["playbooks/base.yaml"]


@pytest.mark.parametrize("bad", ["--output={out}/F..HEAD", "HEAD..--output={out}/F"])
def test_a_revision_that_git_would_read_as_an_option_is_refused(site, capsys, bad):
    out = site / "out"
    out.mkdir()
    bad = bad.format(out=out)
    assert run(site, "--", bad) == 1
    err = capsys.readouterr().err
    revision = next(part for part in bad.split("..", 1) if part.startswith("-"))
    assert f"devinfra: error: bad revision {revision!r}" in err and "Traceback" not in err
    assert list(out.iterdir()) == [] and calls(site) == []


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


def summary_of(site):
    return json.loads((next((site / "logs").iterdir()) / "summary.json").read_text())


@pytest.fixture
def env(monkeypatch):
    """The caller's environment, which the runs must keep (DEVINFRA_MARK)."""
    for name in ("ANSIBLE_CALLBACK_PLUGINS", "ARA_API_CLIENT", "ARA_DATABASE_NAME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DEVINFRA_MARK", "kept")
    return monkeypatch


def fake_ara(site):
    """ara installed with a fake ansible-playbook: the fake moves to venv/bin (where a
    fake python3 knows ara's callback dir and a fake ara-manage records its call in
    `calls` and writes an index.html) and site/ansible-playbook becomes a link to it."""
    bin_dir = site / "venv" / "bin"
    bin_dir.mkdir(parents=True)
    (site / "ansible-playbook").rename(bin_dir / "ansible-playbook")
    (site / "ansible-playbook").symlink_to(bin_dir / "ansible-playbook")
    (bin_dir / "python3").write_text(textwrap.dedent("""\
        #!/bin/sh
        [ "$*" = "-m ara.setup.callback_plugins" ] || exit 1
        echo /fake/ara/callback
        """))
    (bin_dir / "ara-manage").write_text(textwrap.dedent(f"""\
        #!/bin/sh
        echo "ara-manage $ARA_DATABASE_NAME $DEVINFRA_MARK $@" >> {site}/calls
        [ -e {site}/generate-fails ] && {{ echo "generate broke"; exit 1; }}
        mkdir -p "$2" && echo "<title>ARA</title>" > "$2/index.html"
        """))
    for name in ("python3", "ara-manage"):
        (bin_dir / name).chmod(0o755)


def test_without_ara_nothing_is_recorded_and_the_run_says_so(site, env, capsys):
    assert run(site, "--playbooks", "service-etherpad.yaml", "base.yaml") == 0
    assert (site / "envs").read_text().splitlines() == ["|||kept"] * 2
    out = capsys.readouterr().out
    assert out.count("ARA not installed: no ARA record") == 1 and "ARA report" not in out
    assert calls(site) == ["playbooks/base.yaml", "playbooks/service-etherpad.yaml"]
    summary = summary_of(site)
    assert summary["ara_database"] is None and summary["ara_report"] is None


def test_with_ara_each_playbook_is_recorded_then_one_report_generated(site, env, capsys):
    env.setenv("ANSIBLE_CALLBACK_PLUGINS", "/site/callbacks")
    fake_ara(site)
    assert run(site, "--playbooks", "service-etherpad.yaml", "base.yaml") == 0
    run_dir = next((site / "logs").iterdir())
    database, report = run_dir / "ara" / "ansible.sqlite", run_dir / "ara-report"
    # ara's callback first, then the repository's (ara_nodelay), the caller's callbacks and
    # environment kept, the run's database.
    assert (site / "envs").read_text().splitlines() == [
        f"/fake/ara/callback:{ROOT}/plugins/callback:/site/callbacks|offline|{database}|kept"] * 2
    # The report: generated once, after the last playbook, from the same database.
    assert calls(site) == ["playbooks/base.yaml", "playbooks/service-etherpad.yaml", str(report)]
    assert (site / "calls").read_text().splitlines()[-1] == f"ara-manage {database} kept generate {report}"
    out = capsys.readouterr().out
    assert "ARA not installed" not in out and "warning" not in out
    assert out.rstrip().endswith(f"ARA report: {report / 'index.html'}")
    summary = summary_of(site)
    assert summary["ara_database"] == str(database)
    assert summary["ara_report"] == str(report / "index.html")


def test_a_failed_report_is_a_warning_and_keeps_the_deploys_exit_code(site, env, capsys):
    fake_ara(site)
    (site / "generate-fails").touch()
    assert run(site, "--playbooks", "base.yaml") == 0
    out = capsys.readouterr().out
    run_dir = next((site / "logs").iterdir())
    assert f"warning: the ARA report was not generated (exit 1; see {run_dir / 'ara-report.log'})" in out
    assert "1 ok, 0 failed, 0 skipped" in out and "ARA report:" not in out
    assert "generate broke" in (run_dir / "ara-report.log").read_text()
    summary = summary_of(site)
    assert summary["ara_report"] is None and [r["status"] for r in summary["results"]] == ["ok"]
    # A failed playbook and a failed report: the deploy still exits 1, for the playbook.
    (site / "fail").write_text("playbooks/base.yaml")
    assert run(site, "--playbooks", "base.yaml") == deploy.EXIT_FAILED
    out = capsys.readouterr().out
    assert "warning: the ARA report was not generated" in out and "0 ok, 1 failed" in out


def test_a_real_deploy_is_recorded_by_ara(tmp_path, capsys):
    why = "is not installed in this venv, so the real ARA record of a deploy cannot be checked"
    pytest.importorskip("ara", reason=f"ara (pip install 'ara[server]', see constraints.txt) {why}")
    pytest.importorskip("django", reason=f"ara's server part (Django: ara[server]) {why}")
    repo = tmp_path / "repo"
    (repo / "zuul.d").mkdir(parents=True)
    (repo / "zuul.d" / "deploy.yaml").write_text(textwrap.dedent("""\
        - job:
            name: deploy-hello
            vars:
              devinfra_deploy_playbook: hello.yaml
        - project:
            deploy:
              jobs:
                - deploy-hello
        """))
    (repo / "playbooks").mkdir()
    (repo / "playbooks" / "hello.yaml").write_text(textwrap.dedent("""\
        - name: Greet the ARA record
          hosts: localhost
          gather_facts: false
          tasks:
            - name: Say hello to ARA
              ansible.builtin.debug:
                msg: recorded by ARA
        """))
    inventory = _localhost_inventory(tmp_path, "all", "  children:\n    disabled: {}\n")
    code = cli.main([
        "deploy", "--repo", str(repo), "--config", str(tmp_path / "no-config.yaml"),
        "--ansible-playbook", str(Path(sys.executable).parent / "ansible-playbook"),
        "--log-dir", str(tmp_path / "logs"), "--lock-file", str(tmp_path / "lock"),
        "--disable-file", str(tmp_path / "DISABLE"), "-i", str(inventory), "--playbooks", "hello.yaml"])
    out = capsys.readouterr().out
    run_dir = next((tmp_path / "logs").iterdir())
    assert code == 0, out + (run_dir / "01-hello.log").read_text()[-3000:]
    assert "ARA not installed" not in out and "warning" not in out
    database = sqlite3.connect(run_dir / "ara" / "ansible.sqlite")
    try:
        assert database.execute("SELECT path, status FROM playbooks").fetchall() == [
            (str(repo / "playbooks" / "hello.yaml"), "completed")]
        assert database.execute("SELECT name FROM tasks").fetchall() == [("Say hello to ARA",)]
    finally:
        database.close()
    index = run_dir / "ara-report" / "index.html"
    assert f"ARA report: {index}" in out and summary_of(tmp_path)["ara_report"] == str(index)
    assert "hello.yaml" in index.read_text()
    assert "Say hello to ARA" in (run_dir / "ara-report" / "playbooks" / "1.html").read_text()


def test_ara_nodelay_turns_nagle_off_on_aras_offline_server():
    """Loaded as Ansible loads a callback plugin: ARA's API answers without the
    40 ms that Nagle's algorithm and the client's delayed ACK add to each call."""
    offline = pytest.importorskip("ara.clients.offline", reason="ara[server] is not installed in this venv")
    from ansible.plugins.loader import callback_loader

    assert offline.QuietWSGIRequestHandler.disable_nagle_algorithm is False
    callback_loader.add_directory(str(ROOT / "plugins" / "callback"))
    try:
        assert callback_loader.get("ara_nodelay") is not None
        assert offline.QuietWSGIRequestHandler.disable_nagle_algorithm is True
    finally:
        offline.QuietWSGIRequestHandler.disable_nagle_algorithm = False


def _localhost_inventory(tmp_path, group, more=""):
    """An inventory with this machine, run by this Python, in group (more: YAML under it)."""
    inventory = tmp_path / "hosts.yaml"
    inventory.write_text(f"{group}:\n  hosts:\n    localhost:\n      ansible_connection: local\n"
                         f"      ansible_python_interpreter: {sys.executable}\n{more}")
    return inventory


def _maintenance(tmp_path, name, *extra):
    inventory = _localhost_inventory(tmp_path, "bastion")
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


def test_publish_status_applies_its_playbook_to_the_monitoring_hosts_with_the_deploys_settings(site, capsys):
    config = site / "deploy.yaml"
    config.write_text(f"inventory: [inv-a, inv-b]\nansible_playbook: {site / 'ansible-playbook'}\n"
                      "ansible_strategy: mitogen_linear\n")
    assert cli.main(["publish-status", "--config", str(config), "--repo", str(ROOT)]) == 0
    [line] = (site / "calls").read_text().splitlines()
    assert line == "-i inv-a -i inv-b --limit monitoring:!disabled playbooks/publish-deploy-status.yaml"
    assert (site / "strategies").read_text().splitlines() == ["strategy=mitogen_linear"]
    assert "PLAY RECAP for playbooks/publish-deploy-status.yaml" in capsys.readouterr().out
    (site / "fail").write_text("playbooks/publish-deploy-status.yaml")
    assert cli.main(["publish-status", "--config", str(config), "--repo", str(ROOT)]) == deploy.EXIT_FAILED


def test_publish_status_with_a_bad_config_is_a_clear_error(site, capsys):
    config = site / "deploy.yaml"
    config.write_text("publish: [\n")
    assert cli.main(["publish-status", "--config", str(config)]) == 1
    assert "not valid YAML" in capsys.readouterr().err
