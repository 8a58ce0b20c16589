"""The maintenance README's commands, as written, reach the hosts they are about."""

import json
import re
import shlex
import subprocess
from pathlib import Path

import yaml

from devinfra import deploy

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "playbooks" / "maintenance" / "README.md"


def inventories() -> list[str]:
    line = re.search(r'^\s*INVENTORY="([^"]+)"', README.read_text(), re.MULTILINE)
    assert line, "the README defines no INVENTORY"
    words = shlex.split(line.group(1))
    assert words[::2] == ["-i"] * (len(words) // 2)
    return words[1::2]


def test_the_readme_uses_the_inventories_a_deploy_uses():
    assert inventories() == list(deploy.DEFAULT_INVENTORIES)


def test_every_command_on_the_service_hosts_passes_them():
    for command in re.findall(r"^[ \t]*ansible-playbook .*$", README.read_text(), re.MULTILINE):
        playbook = next(w for w in command.split() if w.startswith("playbooks/maintenance/"))
        hosts = {str(play.get("hosts", "")) for play in yaml.safe_load((ROOT / playbook).read_text())}
        if hosts <= {"localhost"}:
            continue
        assert "$INVENTORY" in command, command


def test_the_public_inventories_give_the_maintenance_playbooks_hosts():
    public = [i for i in inventories() if not i.startswith("/")]
    args = [a for i in public for a in ("-i", str(ROOT / i))]
    listed = json.loads(subprocess.run(["ansible-inventory", *args, "--list"], cwd=ROOT, check=True,
                                       capture_output=True, text=True).stdout)
    for group in ("zuul", "zookeeper", "etherpad", "mirror"):
        assert listed.get(group, {}).get("hosts"), f"no hosts in group {group} from {public}"
