"""`devinfra deploy` settings: the command line, else the bastion's config file, else defaults."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from devinfra import deploy


def test_defaults_apply_without_a_config_file(tmp_path):
    got = deploy.settings(tmp_path / "absent.yaml", {"log_dir": None})
    assert got == deploy.DEFAULTS


def test_the_config_file_overrides_defaults_and_options_override_it(tmp_path):
    config = tmp_path / "deploy.yaml"
    config.write_text("inventory: inventory/aio\nlog_dir: /srv/deploy-logs\nlock_timeout: 10\n")
    got = deploy.settings(config, {"log_dir": "/tmp/cli-logs", "inventory": None})
    assert got["inventory"] == ["inventory/aio"]
    assert got["log_dir"] == "/tmp/cli-logs"
    assert got["lock_timeout"] == 10
    assert got["disable_file"] == deploy.DEFAULTS["disable_file"]


@pytest.mark.parametrize("text, message", [
    ("inventories: [a]\n", "unknown settings inventories"),
    ("- a list\n", "expected a mapping"),
    ("log_dir: [unclosed\n", "not valid YAML"),
])
def test_a_bad_config_file_is_named_with_the_problem(tmp_path, text, message):
    config = tmp_path / "deploy.yaml"
    config.write_text(text)
    with pytest.raises(deploy.DeployError, match=message) as exc:
        deploy.settings(config, {})
    assert str(config) in str(exc.value)


# --- bad settings through the real command: one line, exit 1, nothing run ---

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def site(tmp_path):
    """A deploy whose every path is fine until a test spoils one (options given override the config)."""
    fake = tmp_path / "ansible-playbook"
    fake.write_text(f"#!/bin/sh\necho \"$@\" >> {tmp_path}/calls\n")
    fake.chmod(0o755)
    (tmp_path / "a-directory").mkdir()
    return tmp_path


PATHS = {"log_dir": "logs", "lock_file": "lock", "disable_file": "DISABLE"}


def deploy_cli(site: Path, *args: str, config: bytes = b"") -> subprocess.CompletedProcess:
    """`python -m devinfra deploy --playbooks base.yaml` with this config file, as a bastion runs it."""
    (site / "deploy.yaml").write_bytes(config)
    # The paths the config does not set are options in site (options given later override them).
    options = [part for key, name in PATHS.items() if f"{key}:".encode() not in config
               for part in (f"--{key.replace('_', '-')}", str(site / name))]
    return subprocess.run(
        [sys.executable, "-m", "devinfra", "deploy", "--config", str(site / "deploy.yaml"),
         "--repo", str(ROOT), "--ansible-playbook", str(site / "ansible-playbook"), *options, *args,
         "--playbooks", "base.yaml"],
        cwd=site, env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True, text=True, check=False)


@pytest.mark.parametrize(("config", "args", "message"), [
    ("disable_file: {site}/a-directory\n", [],
     "{site}/deploy.yaml: disable_file {site}/a-directory is a directory: it must name a file "
     "(while it exists, its text says why deploys are disabled)"),
    (None, ["--disable-file", "{site}/a-directory"],
     "--disable-file {site}/a-directory is a directory: it must name a file "
     "(while it exists, its text says why deploys are disabled)"),
    ("lock_timeout: soon\n", [],
     "{site}/deploy.yaml: lock_timeout must be a number of seconds (0 or more), not a string 'soon'"),
    (None, ["--lock-timeout", "nan"],
     "--lock-timeout must be a number of seconds (0 or more), not a number nan"),
    ("inventory: {a: 1}\n", [],
     "{site}/deploy.yaml: inventory must be a list of inventory paths (or one path), not a mapping {'a': 1}"),
    ("inventory: [inventory/aio, 3]\n", [],
     "{site}/deploy.yaml: inventory must be a list of inventory paths (or one path), "
     "not a list ['inventory/aio', 3]"),
    (b"log_dir: /var/log/d\xe9ploy\n", [], "{site}/deploy.yaml: not UTF-8: byte 0xe9 at offset 19"),
    ("lock_file: {site}/missing/deploy.lock\n", [],
     "{site}/deploy.yaml: lock_file {site}/missing/deploy.lock: its directory {site}/missing does not exist"),
    (None, ["--lock-file", "{site}/missing/deploy.lock"],
     "--lock-file {site}/missing/deploy.lock: its directory {site}/missing does not exist"),
    (None, ["--summary-file", "{site}/missing/summary.json"],
     "--summary-file {site}/missing/summary.json: its directory {site}/missing does not exist"),
    ("log_dir: [unclosed\n", [],
     "{site}/deploy.yaml: not valid YAML: line 2, column 1: while parsing a flow sequence: "
     "expected ',' or ']', but got '<stream end>'"),
])
def test_a_bad_setting_stops_the_deploy_in_one_line_naming_the_setting_and_its_file(site, config, args,
                                                                                    message):
    def at(text):
        return text.replace("{site}", str(site))

    config = config if isinstance(config, bytes) else at(config or "").encode()
    proc = deploy_cli(site, *map(at, args), config=config)
    assert (proc.returncode, proc.stderr) == (1, f"devinfra: error: {at(message)}\n")
    assert "Traceback" not in proc.stdout + proc.stderr
    assert not (site / "calls").exists() and not (site / "logs").exists()
    # The lock's directory is never made up: a mistyped one would not keep deploys apart.
    assert not (site / "missing").exists()


def test_the_settings_the_bastion_role_writes_are_taken_as_they_are(site):
    # to_nice_yaml of the role's variables: a list of inventories, an int timeout, "" for the strategy.
    config = (f"ansible_strategy: ''\ndisable_file: {site}/DISABLE\ninventory:\n- inventory/base/hosts.yaml\n"
              f"- {site}/private\nlock_file: {site}/deploy.lock\nlock_timeout: 3600\nlog_dir: {site}/logs\n")
    (site / "deploy.yaml").write_text(config)
    got, origins = deploy.load_settings(site / "deploy.yaml", {"lock_timeout": None})
    assert got["inventory"] == ["inventory/base/hosts.yaml", f"{site}/private"]
    assert got["lock_timeout"] == 3600.0 and got["ansible_strategy"] == ""
    assert origins["lock_file"] == f"{site}/deploy.yaml: lock_file"
    assert origins["ansible_playbook"] == "ansible_playbook (default)"
    proc = deploy_cli(site, config=config.encode())
    assert proc.returncode == 0, proc.stderr
    assert "-i inventory/base/hosts.yaml -i " in (site / "calls").read_text()


def test_a_disable_file_that_cannot_be_read_still_disables(site, monkeypatch):
    disable = site / "DISABLE"
    disable.write_text("secret reason\n")
    monkeypatch.setattr(Path, "read_text", lambda self, *a, **k: (_ for _ in ()).throw(
        PermissionError(13, "Permission denied")))
    with pytest.raises(deploy.DeployError, match=r"the reason cannot be read: Permission denied") as exc:
        deploy.check_disabled(disable)
    assert exc.value.code == deploy.EXIT_DISABLED
