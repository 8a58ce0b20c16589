"""`devinfra deploy` settings: the command line, else the bastion's config file, else defaults."""

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
