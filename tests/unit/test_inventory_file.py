"""Adding hosts to inventory/base/hosts.yaml as text: comments and order stay."""

import shutil
from pathlib import Path

import pytest
import yaml

from devinfra.inventory_file import InventoryEditError, add_host

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def hosts_file(tmp_path):
    path = tmp_path / "hosts.yaml"
    shutil.copy(ROOT / "inventory/base/hosts.yaml", path)
    return path


def test_new_host_is_appended_and_nothing_else_moves(hosts_file):
    before = hosts_file.read_text()
    assert add_host(hosts_file, "mirror01.sjc.example.org",
                    {"ansible_host": "192.0.2.7", "region": "sjc"}) == "added"
    after = hosts_file.read_text()
    assert after.startswith(before.rstrip("\n"))  # every earlier line, comments included
    assert after.endswith("    mirror01.sjc.example.org:\n      ansible_host: 192.0.2.7\n"
                          "      region: sjc\n")
    hosts = yaml.safe_load(after)["all"]["hosts"]
    assert list(hosts)[-1] == "mirror01.sjc.example.org"


def test_same_host_again_is_unchanged(hosts_file):
    add_host(hosts_file, "new.example.org", {"ansible_host": "192.0.2.9"})
    text = hosts_file.read_text()
    assert add_host(hosts_file, "new.example.org", {"ansible_host": "192.0.2.9"}) == "unchanged"
    assert hosts_file.read_text() == text


def test_existing_host_is_updated_in_place(hosts_file):
    assert add_host(hosts_file, "zk02.example.org", {"ansible_host": "203.0.113.99"}) == "updated"
    text = hosts_file.read_text()
    hosts = yaml.safe_load(text)["all"]["hosts"]
    assert hosts["zk02.example.org"] == {"ansible_host": "203.0.113.99", "region": "dfw"}
    assert list(hosts).index("zk02.example.org") == 3
    assert text.count("zk02.example.org") == 1


def test_comments_between_hosts_and_after_the_block_are_kept(tmp_path):
    path = tmp_path / "hosts.yaml"
    path.write_text("# head\nall:\n  hosts:\n    a.example.org:  # first\n      ansible_host: 192.0.2.1\n"
                    "    # between\n    b.example.org:\n      ansible_host: 192.0.2.2\n\n"
                    "# tail comment\n  vars:\n    x: 1\n")
    add_host(path, "c.example.org", {"ansible_host": "192.0.2.3"})
    text = path.read_text()
    for comment in ("# head", "# first", "# between", "# tail comment"):
        assert comment in text
    data = yaml.safe_load(text)
    assert list(data["all"]["hosts"]) == ["a.example.org", "b.example.org", "c.example.org"]
    assert data["all"]["vars"] == {"x": 1}


def test_a_file_it_cannot_edit_safely_is_left_alone(tmp_path):
    path = tmp_path / "hosts.yaml"
    path.write_text("all:\n  hosts: {a: {ansible_host: 192.0.2.1}}\n")
    with pytest.raises(InventoryEditError, match="no 'hosts:' mapping"):
        add_host(path, "b", {"ansible_host": "192.0.2.2"})
    assert path.read_text() == "all:\n  hosts: {a: {ansible_host: 192.0.2.1}}\n"
