"""Helpers the scenarios' testinfra tests share."""

import os
import re
import subprocess
from pathlib import Path


def run_converge(*args):
    """Run the scenario's converge playbook again, outside molecule.

    Returns the finished process and the play recap as
    {host: {"changed": n, "unreachable": n, "failed": n}}.
    """
    scenario = Path(os.environ["MOLECULE_SCENARIO_DIRECTORY"])
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    run = subprocess.run(
        ["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"],
         str(scenario / "converge.yaml"), *args],
        capture_output=True, text=True, check=False, env=env,
    )
    recap = {
        host: {"changed": int(changed), "unreachable": int(unreachable), "failed": int(failed)}
        for host, changed, unreachable, failed in re.findall(
            r"^(\S+)\s+: ok=\d+\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)",
            run.stdout, re.M)
    }
    return run, recap
