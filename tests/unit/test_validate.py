"""devinfra validate: inventory variables against the roles' argument specs."""

import shutil
import subprocess
import sys
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


# A "billion laughs": about 600 bytes whose aliases stand for 10**9 strings.
ALIAS_BOMB = "lol0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"lol{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]\n" for i in range(1, 10))

# (file under the inventory, its bytes, the problem reported), each a bad input
# that once gave a traceback, ran away, or passed as "0 problems".
BAD_FILES = [
    ("service/group_vars/latin1.yaml", b"base_sshd_port: 22\nmotd: 'caf\xe9'\n",
     "not UTF-8: byte 0xe9 at offset 29"),
    ("service/group_vars/self.yaml", b"a: &x [*x]\n",
     "refused: line 1, column 8: alias *x is inside the node it refers to (recursive data)"),
    ("service/group_vars/loop.yaml", b"base_thing: &m\n  child: *m\n",
     "refused: line 2, column 10: alias *m is inside the node it refers to (recursive data)"),
    ("service/group_vars/bomb.yaml", ALIAS_BOMB.encode(),
     "refused: line 5, column 47: the aliases expand to more than 100000 nodes (an alias bomb?)"),
    ("service/group_vars/deep.yaml", b"a: " + b"[" * 200 + b"]" * 200 + b"\n",
     "refused: line 1, column 103: nested more than 100 levels deep"),
    ("service/group_vars/list.yaml", b"- base_sshd_port: 22\n",
     "expected a mapping of variable names to values, got a list"),
    ("aio/host_vars/zuul01/list.yaml", b"[a, b]\n",
     "expected a mapping of variable names to values, got a list"),
    ("extra/children.yaml", b"all:\n  children: 5\n",
     "all.children: expected a mapping of group names, got a number"),
    ("extra/hosts.yaml", b"web:\n  hosts: [web01]\n",
     "web.hosts: expected a mapping of host names, got a list"),
    ("extra/vars.yaml", b"web:\n  vars: 3\n", "web.vars: expected a mapping of variable names, got a number"),
    ("extra/group.yaml", b"web: [web01]\n", "web: expected a group (a mapping with hosts, children, vars), "
     "got a list"),
    ("extra/hostvars.yaml", b"all:\n  children:\n    web:\n      hosts:\n        web01: [a]\n",
     "all.children.web.hosts.web01: expected a mapping of host variables, got a list"),
    ("extra/typo.yaml", b"web:\n  host:\n    web01:\n",
     "web.host: not a group key: a group has only hosts, children, vars"),
    ("extra/top.yaml", b"- web01\n", "expected a mapping of group names at the top level, got a list"),
]


@pytest.mark.parametrize(("name", "content", "message"), BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_a_bad_file_is_one_problem_naming_the_file_and_the_key(inventory, name, content, message):
    path = inventory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    assert problems(inventory) == [f"{path}: {message}"]


def test_strings_and_empty_sections_are_read_as_ansible_reads_them(inventory):
    path = inventory / "extra/hosts.yaml"
    path.parent.mkdir()
    path.write_text("web:\n  hosts: web01\n  children:\n  vars:\ndb:\nlb:\n  hosts:\n    lb01:\n")
    assert problems(inventory) == []


def test_aliases_within_the_bound_are_read(inventory):
    add_vars(inventory, """\
        defaults: &defaults {port: 22, proto: tcp}
        base_firewall_allow_extra: [*defaults, {<<: *defaults, port: 80}]
        """)
    assert problems(inventory) == []


def test_the_devinfra_validate_command_reports_each_bad_file_without_a_traceback(inventory):
    for name, content, _ in BAD_FILES:
        path = inventory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    command = [str(Path(sys.executable).parent / "devinfra"), "validate",
               "--inventory", str(inventory), "--roles", str(ROOT / "roles")]
    run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False, timeout=120)
    assert run.returncode == 1
    expected = [f"{inventory / name}: {message}" for name, _, message in BAD_FILES]
    assert sorted(run.stderr.splitlines()) == sorted(expected)  # nothing else: no traceback
    assert f"{len(BAD_FILES)} problem(s)" in run.stdout


@pytest.mark.parametrize("text, message", [
    ("base_sshd_port: 70000\n", "base_sshd_port: 70000 is not a port (1-65535)"),
    ("mirror_cache_dir: var/cache\n", "mirror_cache_dir: 'var/cache' is not an absolute path"),
    ("bastion_disable_file: '/etc/x y'\n", "bastion_disable_file: '/etc/x y' is not an absolute path"),
    ("prometheus_external_url: monitor01/prometheus/\n",
     "prometheus_external_url: 'monitor01/prometheus/' is not an http/https/proxy-http/proxy-https URL"),
])
def test_names_conventions_are_checked_with_the_roles_rules(inventory, text, message):
    """*_port, *_dir, *_file, *_path and *_url by plugins/module_utils/checks.py, before any run."""
    path = add_vars(inventory, text)
    assert problems(inventory) == [f"{path}: {message}"]


def test_empty_paths_and_urls_mean_unset(inventory):
    add_vars(inventory, "postgresql_ssl_ca_file: ''\nbase_pip_index_url: ''\n")
    assert problems(inventory) == []


def test_every_role_variable_keeps_the_naming_conventions():
    """Each spec default that is not a template passes its name's check: the convention holds."""
    import yaml
    wrong = []
    for spec_file in sorted((ROOT / "roles").glob("*/meta/argument_specs.yaml")):
        options = yaml.safe_load(spec_file.read_text())["argument_specs"]["main"].get("options") or {}
        for name, spec in options.items():
            default = spec.get("default")
            if default is not None and not validate._templated(default):
                problem = validate.checks.by_name(name, default)
                if problem:
                    wrong.append(f"{spec_file}: {name}: {problem}")
    assert wrong == []
