"""The inventories as Ansible itself reads them, with the repository's ansible.cfg."""

import configparser
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ENV = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
           PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")


def ansible(*args, cwd=ROOT):
    return subprocess.run(list(args), cwd=cwd, env=ENV, capture_output=True, text=True,
                          check=False, timeout=120)


def inventory_list(*sources):
    argv = ["ansible-inventory", "--list"]
    for source in sources:
        argv += ["-i", str(source)]
    run = ansible(*argv)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


def group_hosts(data, group):
    hosts = set(data.get(group, {}).get("hosts", []))
    for child in data.get(group, {}).get("children", []):
        hosts |= group_hosts(data, child)
    return hosts


def test_production_inventory_groups_only_known_hosts():
    # A host named in groups.yaml but missing from base/hosts.yaml would be
    # created silently by Ansible, with no address: catch the typo here.
    known = set(yaml.safe_load((ROOT / "inventory/base/hosts.yaml").read_text())["all"]["hosts"])
    data = inventory_list()  # ansible.cfg's default sources
    grouped = set()
    for group in data:
        if group not in ("_meta", "all", "ungrouped"):
            grouped |= group_hosts(data, group)
    assert grouped - known == set()
    assert group_hosts(data, "zookeeper") == {"zk01.example.org", "zk02.example.org",
                                              "zk03.example.org"}


def test_group_vars_add_up_firewall_ports():
    hostvars = inventory_list()["_meta"]["hostvars"]
    zuul = hostvars["zuul01.example.org"]
    assert zuul["base_firewall_allow_zuul"][1]["port"] == 443
    assert "base_firewall_allow_zuul" not in hostvars["review01.example.org"]


def test_aio_inventory_reaches_containers_with_docker_exec():
    hostvars = inventory_list(ROOT / "inventory/aio")["_meta"]["hostvars"]
    assert set(hostvars) >= {"bastion01", "zuul01", "review01", "etherpad01", "mirror01"}
    assert hostvars["zuul01"]["ansible_connection"] == "docker"
    assert hostvars["zuul01"]["devinfra_host_profile"] == "executor"


def test_malformed_inventory_fails_the_run_and_names_the_file(tmp_path):
    shutil.copytree(ROOT / "inventory/aio", tmp_path / "aio", symlinks=False)
    broken = tmp_path / "aio/hosts.yaml"
    broken.write_text(broken.read_text().replace("    zuul:\n", "    zuul: [\n", 1))
    run = ansible("ansible-playbook", "-i", str(tmp_path / "aio"),
                  "playbooks/base.yaml", "--list-hosts")
    assert run.returncode != 0
    assert str(broken) in run.stderr
    assert "hosts (" not in run.stdout  # no partial host list


def test_missing_inventory_source_fails_the_run():
    run = ansible("ansible-playbook", "-i", "inventory/nonexistent.yaml",
                  "playbooks/base.yaml", "--list-hosts")
    assert run.returncode != 0


@pytest.mark.parametrize("playbook", sorted(p.name for p in (ROOT / "playbooks").glob("*.yaml")))
def test_playbooks_pass_syntax_check(playbook):
    run = ansible("ansible-playbook", "--syntax-check", "-i", "inventory/aio", f"playbooks/{playbook}")
    assert run.returncode == 0, run.stdout + run.stderr


def test_ansible_cfg_essentials():
    run = ansible("ansible-config", "dump", "--only-changed", "--format", "json")
    assert run.returncode == 0, run.stderr
    settings = {s["name"]: s["value"] for s in json.loads(run.stdout) if "name" in s}
    assert settings["INVENTORY_UNPARSED_IS_FAILED"] is True
    assert settings["INVENTORY_ANY_UNPARSED_IS_FAILED"] is True
    assert settings["CACHE_PLUGIN"] == "jsonfile"
    assert settings["DEFAULT_FORKS"] >= 10
    assert settings["DEFAULT_FORCE_HANDLERS"] is True
    assert settings["DEFAULT_ROLES_PATH"] == [str(ROOT / "roles")]
    assert settings["DEFAULT_MODULE_PATH"] == [str(ROOT / "library")]
    # pipelining is a connection plugin option: read it where it is set.
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "ansible.cfg")
    assert cfg.getboolean("ssh_connection", "pipelining")


@pytest.mark.parametrize(("sources", "host", "expected"), [
    ([], "monitor01.example.org",
     ["https://mirror01.dfw.example.org/", "https://mirror01.ord.example.org/"]),
    (["inventory/aio"], "monitor01", ["https://mirror01/"]),
])
def test_the_monitoring_hosts_probe_every_mirror(sources, host, expected):
    """prometheus_probe_urls_extra as Ansible templates it, in production and in the AIO."""
    argv = ["ansible", host, "-m", "ansible.builtin.debug", "-a", "var=prometheus_probe_urls_extra",
            "-e", "ansible_connection=local"]
    for source in sources:
        argv += ["-i", source]
    run = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=False, timeout=120,
                         env=dict(ENV, ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_STDOUT_CALLBACK="json"))
    assert run.returncode == 0, run.stdout + run.stderr
    [task] = json.loads(run.stdout)["plays"][0]["tasks"]
    assert sorted(task["hosts"][host]["prometheus_probe_urls_extra"]) == expected
