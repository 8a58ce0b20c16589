"""devinfra validate: inventory variables against the roles' argument specs."""

import shutil
import textwrap
from pathlib import Path

import pytest

from devinfra import cli, validate

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def inventory(tmp_path):
    target = tmp_path / "inventory"
    shutil.copytree(ROOT / "inventory", target, symlinks=True)
    return target


def problems(inventory):
    return [str(p) for p in validate.validate(inventory, ROOT / "roles")]


def add_vars(inventory, text, name="service/group_vars/zuul.yaml"):
    path = inventory / name
    path.write_text(path.read_text() + textwrap.dedent(text))
    return path


def test_the_repository_inventory_is_valid():
    assert validate.validate(ROOT / "inventory", ROOT / "roles") == []


def test_wrong_type_names_file_and_key(inventory):
    path = add_vars(inventory, "base_sshd_port: twenty-two\n")
    found = problems(inventory)
    assert len(found) == 1
    assert found[0].startswith(f"{path}: base_sshd_port: ")
    assert "unable to convert to int" in found[0]


def test_choice_outside_the_list(inventory):
    add_vars(inventory, "base_sshd_permit_root_login: 'yes'\n")
    assert any("base_sshd_permit_root_login" in p and "one of" in p for p in problems(inventory))


def test_user_without_key_names_the_entry(inventory):
    path = add_vars(inventory, """\
        base_admin_users:
          - name: carol
            ssh_keys: []
        """)
    assert problems(inventory) == [
        f"{path}: base_admin_users: base_admin_users[0].ssh_keys (name: carol) is empty; "
        "it needs at least one entry"]


def test_user_with_keys_missing_entirely(inventory):
    add_vars(inventory, """\
        base_admin_users:
          - name: dave
        """)
    assert any("missing required arguments: ssh_keys" in p for p in problems(inventory))


def test_unknown_role_variable_is_a_typo(inventory):
    path = add_vars(inventory, "base_firewal_allow: []\n")
    assert problems(inventory) == [
        f"{path}: base_firewal_allow: role 'base' has no variable 'base_firewal_allow' "
        "(see roles/base/meta/argument_specs.yaml)"]


def test_the_longest_role_prefix_owns_a_variable(inventory):
    # mirror_update_keep_releases belongs to mirror_update, not to mirror.
    path = add_vars(inventory, "mirror_update_keep_releases: many\nmirror_update_keep_relases: 2\n")
    found = problems(inventory)
    assert len(found) == 2, found
    assert found[0].startswith(f"{path}: mirror_update_keep_releases: ")
    assert "role 'mirror_update' has no variable 'mirror_update_keep_relases'" in found[1]


def test_suffixed_variables_are_checked_like_their_option(inventory):
    add_vars(inventory, "base_firewall_allow_extra: [{port: 22, proto: icmp}]\n")
    assert any("base_firewall_allow_extra" in p and "proto" in p for p in problems(inventory))


def test_inline_host_vars_are_checked(inventory):
    path = inventory / "base/hosts.yaml"
    text = path.read_text().replace("      region: ord\n", "      region: ord\n      base_sshd_port: x\n")
    path.write_text(text)
    assert any(p.startswith(f"{path}: all.hosts.mirror01.ord.example.org.base_sshd_port:")
               for p in problems(inventory))


def test_templated_values_are_left_to_run_time(inventory):
    add_vars(inventory, "base_sshd_port: \"{{ some_port }}\"\n")
    assert problems(inventory) == []


def test_malformed_yaml_names_file_line_and_column(inventory):
    path = inventory / "service/group_vars/zuul.yaml"
    path.write_text("base_firewall_allow_zuul:\n  - {port: 80\n")
    found = problems(inventory)
    assert len(found) == 1
    assert found[0].startswith(f"{path}: not valid YAML: line ")


def test_vault_values_are_opaque(inventory):
    add_vars(inventory, "secret: !vault |\n  $ANSIBLE_VAULT;1.1;AES256\n  6162\n")
    assert problems(inventory) == []


def test_cli_exit_codes(inventory, capsys):
    assert cli.main(["validate", "--inventory", str(inventory), "--roles", str(ROOT / "roles")]) == 0
    add_vars(inventory, "base_sshd_port: none\n")
    assert cli.main(["validate", "--inventory", str(inventory), "--roles", str(ROOT / "roles")]) == 1
    out = capsys.readouterr()
    assert "1 problem(s)" in out.out
    assert "base_sshd_port" in out.err
