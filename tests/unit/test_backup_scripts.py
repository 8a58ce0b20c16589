"""devinfra-backup (roles/backup_client) and backup-server (roles/backup_server).

Run as programs, with a stand-in `borg` on PATH that records its arguments
and answers as borg 1.4 does. molecule/backup runs both against real borg
and sshd; these cover the paths molecule does not reach cheaply: bad
configuration, a failing source command, the textfile's contents.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CLIENT = ROOT / "roles" / "backup_client" / "files" / "devinfra-backup"
SERVER = ROOT / "roles" / "backup_server" / "files" / "backup-server"

FAKE_BORG = r"""#!/usr/bin/env python3
import json, os, sys
with open(os.environ["FAKE_BORG_LOG"], "a") as log:
    log.write(json.dumps({"args": sys.argv[1:], "repo": os.environ.get("BORG_REPO"),
                          "passphrase": os.environ.get("BORG_PASSPHRASE")}) + "\n")
command = sys.argv[1]
if os.environ.get("FAKE_BORG_FAIL") == command:
    sys.stderr.write("The storage quota (12.00 MB) has been exceeded (16.05 MB).\n")
    sys.exit(2)
if command == "create":
    print(json.dumps({"archive": {"stats": {"original_size": 1234, "nfiles": 2}}}))
elif command == "list":
    print(json.dumps({"archives": [{"name": "data.2026-12-01T02:00:00Z", "time": "2026-12-01T02:00:00"}]}))
"""


@pytest.fixture
def setup(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    borg = bin_dir / "borg"
    borg.write_text(FAKE_BORG)
    borg.chmod(0o755)
    etc = tmp_path / "etc"
    sources = etc / "backup.d"
    sources.mkdir(parents=True)
    (etc / "id").write_text("key\n")
    (etc / "passphrase").write_text("secret words\n")
    state = tmp_path / "state"
    state.mkdir()
    textfile_dir = tmp_path / "textfile"
    textfile_dir.mkdir()
    config = {"host": "etherpad01", "servers": [
        {"name": "backup01", "repository": "ssh://borg-etherpad01@backup01:22/./repo"},
        {"name": "backup02", "repository": "ssh://borg-etherpad01@backup02:22/./repo"}],
        "ssh_key": str(etc / "id"), "known_hosts": str(etc / "known_hosts"),
        "passphrase_file": str(etc / "passphrase"), "sources_dir": str(sources),
        "state_dir": str(state), "textfile": str(textfile_dir / "devinfra_backup.prom")}
    (etc / "client.json").write_text(json.dumps(config))
    data = tmp_path / "data"
    data.mkdir()
    (data / "pad.txt").write_text("text")

    def run(*args, fail=None):
        env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}",
                   FAKE_BORG_LOG=str(tmp_path / "borg.log"))
        if fail:
            env["FAKE_BORG_FAIL"] = fail
        return subprocess.run([sys.executable, str(CLIENT), "--config", str(etc / "client.json"), *args],
                              capture_output=True, text=True, env=env, timeout=60, check=False)

    def calls():
        log = tmp_path / "borg.log"
        return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []

    def register(name, **source):
        (sources / f"{name}.json").write_text(json.dumps({"name": name, **source}))

    return run, calls, register, config, data


def test_each_source_goes_to_every_server_with_the_passphrase(setup):
    run, calls, register, config, data = setup
    register("data", paths=[str(data)])
    result = run("run")
    assert result.returncode == 0, result.stderr
    creates = [c for c in calls() if c["args"][0] == "create"]
    assert [c["repo"] for c in creates] == [s["repository"] for s in config["servers"]]
    assert all(c["passphrase"] == "secret words" for c in creates)
    assert all(c["args"][-1] == str(data) and c["args"][-2].startswith("::data.20") for c in creates)
    text = Path(config["textfile"]).read_text()
    assert 'devinfra_backup_last_run_success{server="backup02",source="data"} 1' in text
    assert 'devinfra_backup_archive_original_bytes{server="backup01",source="data"} 1234' in text


def test_a_failing_source_command_fails_that_source_and_not_the_others(setup):
    run, calls, register, config, data = setup
    register("broken", paths=[str(data)], command=["/bin/sh", "-c", "echo dump failed >&2; exit 3"])
    register("data", paths=[str(data)])
    result = run("run")
    assert result.returncode == 1
    assert "broken: its command /bin/sh exited 3: dump failed" in result.stderr
    archived = sorted(c["args"][-2].split(".")[0] for c in calls() if c["args"][0] == "create")
    assert archived == ["::data", "::data"]
    text = Path(config["textfile"]).read_text()
    assert 'devinfra_backup_last_run_success{server="backup01",source="broken"} 0' in text
    assert 'devinfra_backup_last_success_timestamp_seconds{server="backup01",source="broken"}' not in text


def test_a_link_is_archived_as_what_it_points_at(setup, tmp_path):
    run, calls, register, config, data = setup
    (tmp_path / "latest").symlink_to(data)
    register("dump", paths=[str(tmp_path / "latest")])
    assert run("run").returncode == 0
    assert calls()[0]["args"][-1] == str(data)


def test_quota_and_missing_paths_are_reported_by_name(setup, tmp_path):
    run, calls, register, config, data = setup
    register("gone", paths=[str(tmp_path / "nowhere")])
    register("data", paths=[str(data)])
    result = run("run", fail="create")
    assert result.returncode == 1
    assert f"gone: {tmp_path / 'nowhere'} does not exist" in result.stderr
    assert "backup01: backup of data failed (borg exit 2): The storage quota" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "--source", "nosuch"], "no backup source nosuch"),
        (["extract", "--source", "data", "--archive", "other.2026-12-01T02:00:00Z", "--target", "/tmp/x"],
         "is not an archive of data"),
        (["extract", "--source", "data", "--archive", "data.2020-01-01T00:00:00Z", "--server", "backup09",
          "--target", "/tmp/x"], "no backup server 'backup09'"),
    ],
    ids=["unknown-source", "archive-of-another-source", "unknown-server"],
)
def test_bad_arguments_exit_2_with_a_message(setup, args, message):
    run, calls, register, config, data = setup
    register("data", paths=[str(data)])
    result = run(*args)
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_an_archive_that_does_not_exist_is_named_and_nothing_is_extracted(setup, tmp_path):
    run, calls, register, config, data = setup
    target = tmp_path / "restore"
    result = run("extract", "--source", "data", "--archive", "data.2020-01-01T00:00:00Z",
                 "--target", str(target))
    assert result.returncode == 1
    newest = "(the newest of data: data.2026-12-01T02:00:00Z)"
    assert f"no archive data.2020-01-01T00:00:00Z {newest}" in result.stderr
    assert not target.exists()
    assert not [c for c in calls() if c["args"][0] == "extract"]


def test_check_names_the_archive_an_extract_would_take_and_extracts_nothing(setup):
    """restore.yaml checks every source's archive (--check) before it deploys, and extracts later."""
    run, calls, register, config, data = setup
    newest = run("extract", "--source", "data", "--check")
    assert newest.returncode == 0, newest.stderr
    assert json.loads(newest.stdout) == {"server": "backup01", "archive": "data.2026-12-01T02:00:00Z"}
    missing = run("extract", "--source", "data", "--archive", "data.2020-01-01T00:00:00Z", "--check")
    assert missing.returncode == 1 and "no archive data.2020-01-01T00:00:00Z" in missing.stderr
    neither = run("extract", "--source", "data")
    assert neither.returncode == 2 and "either --target DIR or --check" in neither.stderr
    assert not [c for c in calls() if c["args"][0] == "extract"]


def test_a_client_without_its_key_or_configuration_says_so(setup, tmp_path):
    run, calls, register, config, data = setup
    Path(config["ssh_key"]).unlink()
    result = run("run")
    assert result.returncode == 2 and "was never installed" in result.stderr, result.stderr
    missing = subprocess.run([sys.executable, str(CLIENT), "--config", str(tmp_path / "none.json"), "list"],
                             capture_output=True, text=True, check=False)
    assert missing.returncode == 2 and "is the backup_client role applied?" in missing.stderr


def test_a_bad_source_file_names_itself(setup):
    run, calls, register, config, data = setup
    register("data", paths="relative/path")
    result = run("run")
    assert result.returncode == 2
    assert "data.json: paths must be a non-empty list of absolute paths" in result.stderr


def test_the_server_tool_refuses_an_unknown_client_and_a_missing_configuration(tmp_path):
    config = tmp_path / "server.json"
    config.write_text(json.dumps({"clients": [], "keep": {"daily": 7}, "state_dir": str(tmp_path)}))
    unknown = subprocess.run([sys.executable, str(SERVER), "--config", str(config),
                              "rollback", "--client", "x"], capture_output=True, text=True, check=False)
    assert unknown.returncode == 2 and "no client x (known: none)" in unknown.stderr
    missing = subprocess.run([sys.executable, str(SERVER), "--config", str(tmp_path / "no.json"), "maintain"],
                             capture_output=True, text=True, check=False)
    assert missing.returncode == 2 and "is the backup_server role applied?" in missing.stderr
