"""The devinfra command: one error class, reported once, in one line, with its exit code."""

import subprocess
import sys
from pathlib import Path

import pytest

from devinfra import cli, deploy, hosts, inventory_file, launch, plan, status
from devinfra.errors import DevinfraError

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("error", [plan.PlanError, deploy.DeployError, hosts.HostsError, launch.LaunchError,
                                   status.StatusError, inventory_file.InventoryEditError])
def test_every_modules_error_is_a_devinfra_error_with_exit_code_1_unless_told(error):
    assert issubclass(error, DevinfraError)
    assert error("why").code == 1
    assert error("why", code=75).code == 75


def test_main_reports_a_devinfra_error_from_any_command_as_one_line_and_its_code(monkeypatch, capsys):
    def refuse(args):
        raise DevinfraError("the reason", code=7)

    monkeypatch.setattr(cli, "_cmd_plan", refuse)
    assert cli.main(["plan", "--files", "x"]) == 7
    assert capsys.readouterr().err == "devinfra: error: the reason\n"


def test_deploys_own_exit_codes_come_through_main(tmp_path, capsys):
    (tmp_path / "DISABLE").write_text("db migration\n")
    code = cli.main(["deploy", "--config", str(tmp_path / "none.yaml"), "--repo", str(ROOT),
                     "--log-dir", str(tmp_path / "logs"), "--lock-file", str(tmp_path / "lock"),
                     "--disable-file", str(tmp_path / "DISABLE"), "--playbooks", "base.yaml"])
    assert code == deploy.EXIT_DISABLED == 3
    assert capsys.readouterr().err == (f"devinfra: error: deploys are disabled by {tmp_path / 'DISABLE'}: "
                                       "db migration\n(remove the file to enable them)\n")


def test_validate_still_exits_2_for_a_missing_directory(tmp_path, capsys):
    assert cli.main(["validate", "--inventory", str(tmp_path / "nope"), "--roles", str(tmp_path)]) == 2
    assert capsys.readouterr().err == f"devinfra: error: {tmp_path / 'nope'} is not a directory\n"


def test_the_module_entry_point_exits_with_the_errors_code_and_no_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "devinfra", "status-page", "--history", str(tmp_path / "h")],
                          cwd=ROOT, capture_output=True, text=True, check=False)
    assert (proc.returncode, proc.stderr) == (1, "devinfra: error: give --out DIR, --textfile PATH or both\n")
