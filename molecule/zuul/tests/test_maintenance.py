"""The Zuul maintenance playbooks (zuul-restart.yaml, zuul-reconfigure.yaml) on the converged platform.

A build that sleeps runs while the rolling restart pauses the executor: the
restart must wait for it (the build succeeds once, not aborted and not
retried), every component comes back with a new process, and jobs run again.
The reconfiguration must report a clean tenant as clean and a broken one as
broken. Runs after test_default.py; the helpers are in zuul_platform.py.
"""

import re
import secrets
import time
from datetime import UTC, datetime
from pathlib import Path

from devinfra_molecule import run_playbook, wait_for
from zuul_platform import PROJECT, TENANT, api, builds_of, commit_files, commit_job, wait_for_build

PLAYBOOKS = Path(__file__).resolve().parents[3] / "playbooks" / "maintenance"
COMPONENTS = ["scheduler", "web", "executor", "fingergw", "launcher"]
SLEEP = 45


def playbook(name, *args):
    return run_playbook(PLAYBOOKS / name, *args)


def output(run):
    return run.stdout + run.stderr


def main_pids(zuul01):
    return {c: zuul01.check_output(f"systemctl show --property=MainPID --value zuul-{c}").strip()
            for c in COMPONENTS}


def executor_state(client):
    return [c["state"] for c in api(client, "components").get("executor", []) if c["hostname"] == "zuul01"]


def test_restart_waits_for_the_running_build_and_restarts_every_component(zuul01, client):
    pids = main_pids(zuul01)
    assert all(p != "0" for p in pids.values()), pids
    sha = commit_files(zuul01, {
        ".zuul.yaml": ("- job:\n    name: maintenance-sleep\n    run: playbooks/sleep.yaml\n"
                       "- project:\n    post:\n      jobs: [maintenance-sleep]\n"),
        "playbooks/sleep.yaml": (f"- hosts: all\n  tasks:\n    - name: Sleep through the restart\n"
                                 f"      ansible.builtin.command: sleep {SLEEP}\n"),
        "marker.txt": f"{secrets.token_hex(8)}\n",
    }, "sleep through a restart")
    began = time.monotonic()
    running = wait_for(lambda: builds_of(client, sha, "false"), 240, "the sleep build to start")[0]
    print(f"sleep build started after {time.monotonic() - began:.0f}s")

    # 1. The executor cannot drain in 3 s: the run fails, names the host and
    # the build, puts the executor back in service and restarts nothing.
    run = playbook("zuul-restart.yaml", "-e", "devinfra_zuul_drain_timeout=3")
    assert run.returncode != 0, output(run)[-3000:]
    assert re.search(r"zuul01: the executor still runs 1 build\(s\)", output(run)), output(run)[-4000:]
    assert "maintenance-sleep" in output(run) and running["uuid"] in output(run), output(run)[-4000:]
    assert main_pids(zuul01) == pids
    assert wait_for(lambda: executor_state(client) == ["running"], 30, "the executor unpaused")

    # 2. The real rolling restart waits for the build, then restarts everything.
    print(f"drain timeout run done after {time.monotonic() - began:.0f}s")
    run = playbook("zuul-restart.yaml")
    print(f"restart done after {time.monotonic() - began:.0f}s")
    assert run.returncode == 0, output(run)[-6000:]
    build = wait_for_build(client, sha)
    assert build["result"] == "SUCCESS", build
    assert len(builds_of(client, sha, "true")) == 1, "the build was aborted and retried"
    after = main_pids(zuul01)
    assert all(after[c] not in ("0", pids[c]) for c in COMPONENTS), (pids, after)
    # The executor was restarted after the build had ended, not under it.
    started = zuul01.check_output(
        "date -u -d \"$(systemctl show --property=ExecMainStartTimestamp --value zuul-executor)\""
        " +%Y-%m-%dT%H:%M:%S")
    end = datetime.fromisoformat(build["end_time"]).replace(tzinfo=UTC)
    assert datetime.fromisoformat(started).replace(tzinfo=UTC) >= end.replace(microsecond=0), (started, end)
    components = api(client, "components")
    for kind in COMPONENTS:
        assert [c["state"] for c in components.get(kind, [])] == ["running"], components


def test_a_job_runs_after_the_restart(zuul01, client):
    token = secrets.token_hex(8)
    build = wait_for_build(client, commit_job(zuul01, token))
    assert build["result"] == "SUCCESS", build


def last_reconfigured(client):
    return api(client, f"tenant/{TENANT}/status")["last_reconfigured"]


def test_full_reconfigure_finishes_without_errors(client):
    before = last_reconfigured(client)
    time.sleep(1)  # layouts are stamped to the second
    run = playbook("zuul-reconfigure.yaml")
    assert run.returncode == 0, output(run)[-4000:]
    assert last_reconfigured(client) > before, "the tenant has no new layout"
    assert "configuration error(s) or warning(s)" not in run.stdout, run.stdout[-3000:]
    assert api(client, f"tenant/{TENANT}/config-errors") == []


def test_full_reconfigure_fails_and_prints_a_broken_config(zuul01, client):
    commit_files(zuul01, {".zuul.yaml": "- job:\n    name: broken-job\n    parent: no-such-parent-job\n"},
                 "break the config")
    try:
        wait_for(lambda: api(client, f"tenant/{TENANT}/config-errors"), 120,
                 "the broken config in config-errors")
        run = playbook("zuul-reconfigure.yaml")
        assert run.returncode != 0, output(run)[-4000:]
        assert "configuration errors after the full reconfiguration in tenant(s) devinfra" in output(run), \
            output(run)[-4000:]
        assert "no-such-parent-job" in run.stdout and PROJECT in run.stdout, run.stdout[-4000:]
    finally:
        # Leave the tenant clean: the smoke job again.
        commit_job(zuul01, secrets.token_hex(8))
        wait_for(lambda: api(client, f"tenant/{TENANT}/config-errors") == [], 120, "no config errors")
