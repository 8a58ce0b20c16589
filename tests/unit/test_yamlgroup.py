"""The yamlgroup inventory plugin (plugins/inventory/yamlgroup.py).

Most tests run the plugin in-process on Ansible's own InventoryData and
DataLoader, as the inventory manager does; the end-to-end ones run
ansible-inventory with the repository's ansible.cfg.
"""

import fnmatch
import importlib.util
import json
import os
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import re2
from ansible import constants
from ansible.errors import AnsibleParserError
from ansible.inventory import group as ansible_group
from ansible.inventory.data import InventoryData
from ansible.parsing.dataloader import DataLoader

ROOT = Path(__file__).resolve().parents[2]
ENV = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
           PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")

_spec = importlib.util.spec_from_file_location("yamlgroup", ROOT / "plugins/inventory/yamlgroup.py")
yamlgroup = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(yamlgroup)

HOSTS = ["web01.dfw.example.org", "web02.dfw.example.org", "web03.ord.example.org",
         "db01.dfw.example.org", "db02.ord.example.org", "Web04.dfw.example.org", "lb1.example.org"]


def groups_file(tmp_path, text, name="groups.yaml"):
    path = tmp_path / name
    path.parent.mkdir(exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def inventory_with(hosts=HOSTS, groups=None):
    """InventoryData holding *hosts*, and *groups* ({group: [host]}) as another source would."""
    inventory = InventoryData()
    for host in hosts:
        inventory.add_host(host, "all")
    for group, members in (groups or {}).items():
        inventory.add_group(group)
        for host in members:
            inventory.add_child(group, host)
    return inventory


def parse(path, inventory=None):
    """Run the plugin on *path* as the inventory manager does; {group: [host, ...]}."""
    inventory = inventory or inventory_with()
    plugin = yamlgroup.InventoryModule()
    assert plugin.verify_file(str(path))
    plugin.parse(inventory, DataLoader(), str(path))
    inventory.reconcile_inventory()
    return {name: [host.name for host in group.get_hosts()]
            for name, group in inventory.groups.items() if name not in ("all", "ungrouped")}


def plugin_keeping_warnings():
    """The plugin, and the list its warnings go to."""
    warnings = []
    plugin = yamlgroup.InventoryModule()
    plugin.display = type("Display", (), {"warning": staticmethod(warnings.append)})()
    return plugin, warnings


def members(tmp_path, groups_yaml, **kwargs):
    result = parse(groups_file(tmp_path, "plugin: yamlgroup\ngroups:\n" + textwrap.indent(
        textwrap.dedent(groups_yaml), "  ")), **kwargs)
    return {name: set(hosts) for name, hosts in result.items()}


def ansible(*args):
    return subprocess.run(list(args), cwd=ROOT, env=ENV, capture_output=True, text=True,
                          check=False, timeout=120)


# --- patterns -----------------------------------------------------------------


def test_globs_match_whole_names_case_sensitively(tmp_path):
    found = members(tmp_path, """\
        star: "web*"
        question: "db0?.dfw.example.org"
        ranges: "*[0-9][13].*.example.org"
        negated: "*[!0-9].example.org"
        dots: "*.ord.*"
        partial: "web01"
        exact: "lb1.example.org"
        """)
    assert found["star"] == {"web01.dfw.example.org", "web02.dfw.example.org",
                             "web03.ord.example.org"}  # not Web04
    assert found["question"] == {"db01.dfw.example.org"}
    assert found["ranges"] == {"web01.dfw.example.org", "web03.ord.example.org",
                               "db01.dfw.example.org"}
    assert found["negated"] == set(HOSTS) - {"lb1.example.org"}
    assert found["dots"] == {"web03.ord.example.org", "db02.ord.example.org"}
    assert found["partial"] == set()
    assert found["exact"] == {"lb1.example.org"}


def test_regexes_must_match_the_whole_name(tmp_path):
    found = members(tmp_path, r"""
        prefix_only: '^web0[12]'
        whole: '^web0[12]\..*'
        dollar: '^(web|db)0[1-3]\.ord\.example\.org$'
        scoped_flag: '^(?i:web)0[14]\..*'
        flag_anywhere: '^(?i)web0[14]\..*'
        negated_class: '^[^w].*\.dfw\..*'
        alternation: '^db01\.dfw\.example\.org|web0[12]\..*'
        """)
    assert found["prefix_only"] == set()
    assert found["whole"] == {"web01.dfw.example.org", "web02.dfw.example.org"}
    assert found["dollar"] == {"web03.ord.example.org", "db02.ord.example.org"}
    assert found["scoped_flag"] == {"web01.dfw.example.org", "Web04.dfw.example.org"}
    assert found["flag_anywhere"] == found["scoped_flag"]
    assert found["negated_class"] == {"db01.dfw.example.org", "Web04.dfw.example.org"}
    assert found["alternation"] == {"db01.dfw.example.org", "web01.dfw.example.org",
                                    "web02.dfw.example.org"}


def test_exclusions_apply_after_every_inclusion_of_the_group(tmp_path):
    found = members(tmp_path, r"""
        web: ["!*.ord.example.org", "web*", '!^web02\..*', "Web04.dfw.example.org"]
        dfw_not_web: ["*.dfw.example.org", "!@web"]
        only_exclusions: ["!web*"]
        """)
    assert found["web"] == {"web01.dfw.example.org", "Web04.dfw.example.org"}
    assert found["dfw_not_web"] == {"web02.dfw.example.org", "db01.dfw.example.org"}
    assert found["only_exclusions"] == set()


def test_references_take_the_members_of_other_groups(tmp_path):
    inventory = inventory_with(groups={"legacy": ["lb1.example.org", "db01.dfw.example.org"]})
    found = members(tmp_path, """\
        everything: ["@web", "@db", "@legacy"]
        web: "web*"
        db: ["db*", "@legacy", "!lb1.example.org"]
        nearly_all: ["@all", "!*.dfw.example.org"]
        """, inventory=inventory)
    assert found["db"] == {"db01.dfw.example.org", "db02.ord.example.org"}
    assert found["everything"] == {"web01.dfw.example.org", "web02.dfw.example.org",
                                   "web03.ord.example.org", "db01.dfw.example.org",
                                   "db02.ord.example.org", "lb1.example.org"}
    assert found["nearly_all"] == {"web03.ord.example.org", "db02.ord.example.org", "lb1.example.org"}


def test_a_reference_counts_what_other_sources_put_in_the_group(tmp_path):
    # "web" exists with a member from another source; this file adds to it.
    inventory = inventory_with(groups={"web": ["lb1.example.org"]})
    found = members(tmp_path, """\
        web: ["web0[12]*", "!lb1.example.org"]
        frontend: "@web"
        """, inventory=inventory)
    # The exclusion limits what this file adds: it does not remove lb1 from web.
    assert found["web"] == found["frontend"] == {"lb1.example.org", "web01.dfw.example.org",
                                                 "web02.dfw.example.org"}


def test_only_hosts_already_in_the_inventory_join_groups(tmp_path):
    inventory = inventory_with()
    found = members(tmp_path, """\
        web: ["web*", "web99.dfw.example.org"]
        ghost: ["ghost01.example.org", "^ghost.*"]
        """, inventory=inventory)
    assert found["web"] == {"web01.dfw.example.org", "web02.dfw.example.org",
                            "web03.ord.example.org"}
    assert found["ghost"] == set()
    assert sorted(inventory.hosts) == sorted(HOSTS)


def test_empty_groups_exist(tmp_path):
    found = members(tmp_path, """\
        disabled: []
        retired:
        nothing_matches: "nope*"
        """)
    assert found == {"disabled": set(), "retired": set(), "nothing_matches": set()}


def test_members_keep_the_inventory_order_and_groups_are_flat(tmp_path):
    inventory = inventory_with()
    parse(groups_file(tmp_path, """\
        plugin: yamlgroup
        groups:
          zuul: ["@scheduler", "@executor"]
          executor: ["*.ord.example.org", "db*"]
          scheduler: "web0[12]*"
        """), inventory)
    assert [h.name for h in inventory.groups["executor"].get_hosts()] == [
        "web03.ord.example.org", "db01.dfw.example.org", "db02.ord.example.org"]
    assert [h.name for h in inventory.groups["zuul"].get_hosts()] == [
        "web01.dfw.example.org", "web02.dfw.example.org", "web03.ord.example.org",
        "db01.dfw.example.org", "db02.ord.example.org"]
    assert [g.name for g in inventory.groups["zuul"].parent_groups] == ["all"]
    assert inventory.groups["zuul"].child_groups == []


def test_a_host_named_like_a_group_joins_as_a_host(tmp_path):
    found = members(tmp_path, """\
        web: "web*"
        all_web: ["web", "web01*"]
        """, inventory=inventory_with(hosts=["web", "web01"]))
    assert found["all_web"] == {"web", "web01"}
    assert found["web"] == {"web", "web01"}


def test_host_names_with_a_newline_are_matched_too(tmp_path):
    hosts = ["odd\nname", "odd", "name"]
    found = members(tmp_path, """\
        glob: "odd*"
        regex: '^odd\\sname'
        exclusion: ["*", "!odd?name"]
        """, inventory=inventory_with(hosts=hosts))
    assert found == {"glob": {"odd\nname", "odd"}, "regex": {"odd\nname"},
                     "exclusion": {"odd", "name"}}


@pytest.mark.parametrize("glob", [
    "[]]*", "[!]]*", "[a-]*", "[-a]*", "[!]*", "[*", "web[0-9", "w**1*", "[\\]*", "[^w]*", "[&&]*",
    "[a-c-e]*", "[z-a]*", "web0[3-1]*", "[!z-a]*", "w[[-*!]*", "*[!.]", "?[!e]*",
])
def test_unusual_globs_agree_with_fnmatch(glob):
    names = {"]x", "!x", "a", "-", "[x", "web[0-9", "web01", "\\x", "^x", "&x", "c", "d", "e",
             "web02", "w!x", "w*x", "wex", "w\nx"}
    expected = {name for name in names if fnmatch.fnmatchcase(name, glob)}
    assert yamlgroup.compile_pattern(glob).select(yamlgroup.HostNames(names)) == expected


def test_glob_translation_agrees_with_fnmatch():
    rng = random.Random(7)
    for _ in range(3000):
        glob = "".join(rng.choices("ab.-!^]*?[\\&", k=rng.randint(0, 7))).lstrip("^")
        names = {"".join(rng.choices("ab.-!^]*?[\\&\n", k=rng.randint(1, 5))) for _ in range(8)}
        expected = {name for name in names if fnmatch.fnmatchcase(name, glob)}
        assert yamlgroup.compile_pattern(glob).select(yamlgroup.HostNames(names)) == expected, glob


def test_regex_scans_agree_with_fullmatch():
    # Includes the syntax that must not be scanned (\A, \z, flags), syntax that
    # can match a newline, and syntax RE2 refuses (skipped).
    tokens = ["a", "b", ".", r"\w", r"\W", r"\s", "[^a]", r"\n", "$", "^", r"\b", "|", "(", ")",
              "*", "+", "?", "(?=a)", r"\z", r"\A", "(?i)", "(?s)", "(?m)", "(?-m:", "{2}", "(?:",
              "(?P<n>", r"\1", "é", r"\C"]
    rng = random.Random(11)
    checked = 0
    while checked < 3000:
        regex = "^" + "".join(rng.choices(tokens, k=rng.randint(1, 6)))
        try:
            pattern = yamlgroup.compile_pattern(regex)
        except re2.error:
            continue
        names = {"".join(rng.choices("abAé-\n", k=rng.randint(1, 4))) for _ in range(8)}
        reference = re2.compile(regex)
        expected = {name for name in names if reference.fullmatch(name)}
        assert pattern.select(yamlgroup.HostNames(names)) == expected, regex
        checked += 1


# --- patterns that make a backtracking engine take exponential time -----------
# RE2 matches them in linear time; these tests check the results (a backtracking
# engine would not finish them).


def test_a_nested_quantifier_regex_selects_the_right_long_names(tmp_path):
    near_miss = "a" * 5000 + "!"
    hosts = ["a" * 5000, near_miss, "a" * 40 + "b", "a" * 30 + "\n" + "a" * 30, "aa"]
    found = members(tmp_path, """\
        nested: '^(a+)+$'
        alternation: '^(a|aa)+'
        words: '^(\\w+\\s?)*'
        """, inventory=inventory_with(hosts=hosts))
    assert found["nested"] == found["alternation"] == {"a" * 5000, "aa"}
    assert found["words"] == {"a" * 5000, "a" * 40 + "b", "a" * 30 + "\n" + "a" * 30, "aa"}


def test_a_glob_with_many_stars_selects_the_right_long_names(tmp_path):
    hosts = ["a" * 60, "a" * 59 + "c", "a" * 30 + "\n" + "a" * 29 + "c", "a" * 6 + "c",
             "b" * 60 + "c"]
    found = members(tmp_path, """\
        stars: '*a*a*a*a*a*a*a*c'
        prefixed: 'a*a*a*a*a*a*a*c'
        reversed_range: '*a*a*a*a*a*a*a*[c-a]'
        """, inventory=inventory_with(hosts=hosts))
    expected = {"a" * 59 + "c", "a" * 30 + "\n" + "a" * 29 + "c"}  # fnmatch's * matches a newline
    assert found["stars"] == found["prefixed"] == expected
    assert found["reversed_range"] == {name for name in hosts
                                       if fnmatch.fnmatchcase(name, "*a*a*a*a*a*a*a*[c-a]")}


def test_host_names_that_are_not_valid_unicode_are_matched_one_by_one(tmp_path):
    # A lone surrogate cannot be encoded in UTF-8, the text RE2 scans.
    hosts = ["web\udcff01", "web02", "db\udcff"]
    found = members(tmp_path, """\
        glob: "web*"
        regex: '^(web|db).+'
        exact: "web02"
        """, inventory=inventory_with(hosts=hosts))
    assert found == {"glob": {"web\udcff01", "web02"}, "regex": set(hosts), "exact": {"web02"}}


# --- group names --------------------------------------------------------------


@pytest.mark.parametrize(("setting", "names", "warning"), [
    ("never", ("zuul-executor", "1st", "web.dfw"),
     "Invalid characters were found in group names but not replaced, use -vvvv to see details"),
    ("ignore", ("zuul-executor", "1st", "web.dfw"), None),
    ("always", ("zuul_executor", "_st", "web_dfw"),
     "Invalid characters were found in group names and automatically replaced, use -vvvv to see details"),
    ("silently", ("zuul_executor", "_st", "web_dfw"), None),
])
def test_group_names_follow_ansibles_transform_invalid_group_chars(tmp_path, monkeypatch, setting,
                                                                  names, warning):
    monkeypatch.setattr(constants, "TRANSFORM_INVALID_GROUP_CHARS", setting)
    warnings = []
    monkeypatch.setattr(ansible_group.display, "warning", warnings.append)
    found = members(tmp_path, """\
        zuul-executor: "web0[12]*"
        1st: "@zuul-executor"
        web.dfw: ["*.dfw.example.org", "!@1st"]
        """)
    executor, first, dfw = names
    assert found == {executor: {"web01.dfw.example.org", "web02.dfw.example.org"},
                     first: {"web01.dfw.example.org", "web02.dfw.example.org"},
                     dfw: {"db01.dfw.example.org", "Web04.dfw.example.org"}}
    assert set(warnings) == ({warning} if warning else set())


def test_a_reference_finds_a_group_another_source_named_with_transformed_characters(tmp_path,
                                                                                   monkeypatch):
    monkeypatch.setattr(constants, "TRANSFORM_INVALID_GROUP_CHARS", "silently")
    inventory = inventory_with(groups={"legacy_web": ["lb1.example.org"]})  # from "legacy-web"
    found = members(tmp_path, """\
        front: "@legacy-web"
        """, inventory=inventory)
    assert found["front"] == {"lb1.example.org"}


# --- errors -------------------------------------------------------------------


@pytest.mark.parametrize(("groups_yaml", "message"), [
    ('web: ["web*", 42]',
     "group 'web', entry 42: expected a string, got a number (quote patterns in YAML)"),
    ("web: [{db01: null}]", "group 'web', entry {'db01': None}: expected a string, got a mapping"),
    ("web: [[a, b]]", "group 'web', entry ['a', 'b']: expected a string, got a list"),
    ("web: {hosts: web01}", "group 'web': expected a pattern or a list of patterns, got a mapping"),
    ("web: 7", "group 'web': expected a pattern or a list of patterns, got a number"),
    ("web: ['^web[0-9']", "group 'web', entry '^web[0-9': invalid regular expression "
                          "(RE2 syntax, which has no backreferences or lookarounds): "
                          "missing ]: [0-9"),
    ("web: ['!^(web)\\1']", "group 'web', entry '!^(web)\\\\1': invalid regular expression "
                            "(RE2 syntax, which has no backreferences or lookarounds): "
                            "invalid escape sequence: \\1"),
    ("web: ['^(?!db).*']", "group 'web', entry '^(?!db).*': invalid regular expression "
                           "(RE2 syntax, which has no backreferences or lookarounds): "
                           "invalid perl operator: (?!"),
    ("web: ['@nope']", "group 'web', entry '@nope': unknown group 'nope': it is defined neither "
                       "in this file nor in the inventory so far"),
    ("web: ['!@']", "group 'web', entry '!@': unknown group ''"),
    ("a: '@b'\n  b: ['x', '@c']\n  c: '!@a'", "group 'c', entry '!@a': reference cycle a -> b -> c -> a"),
    ("a: ['web*', '@a']", "group 'a', entry '@a': reference cycle a -> a"),
    ("web: '@ungrouped'", "group 'web', entry '@ungrouped': 'ungrouped' cannot be referenced"),
    ("12: web*", "group 12: a group name must be a non-empty string, got a number"),
    ("'': web*", "group '': a group name must be a non-empty string, got a string"),
    ("web: [!unsafe 'web*']", "group 'web', entry !unsafe 'web*': expected a string, "
                              "got a !unsafe value"),
    ("all: '*'", "group 'all': this group is Ansible's own and cannot be defined here"),
    ("ungrouped: '*'", "group 'ungrouped': this group is Ansible's own"),
])
def test_errors_name_the_file_the_group_and_the_entry(tmp_path, groups_yaml, message):
    path = groups_file(tmp_path, f"plugin: yamlgroup\ngroups:\n  {groups_yaml}\n")
    inventory = inventory_with()
    with pytest.raises(AnsibleParserError) as error:
        parse(path, inventory)
    assert error.value.message.startswith(f"{path}: {message}")
    assert set(inventory.groups) == {"all", "ungrouped"}  # nothing added


@pytest.mark.parametrize(("text", "message"), [
    ("plugin: yamlgroup\ngroups: [web, db]\n",
     "'groups' must be a mapping of group names to patterns, got a list"),
    ("plugin: yamlgroup\ngroups: web*\n",
     "'groups' must be a mapping of group names to patterns, got a string"),
    ("plugin: yamlgroup\n", "'groups' must be a mapping of group names to patterns, got nothing (null)"),
    ("plugin: yamlgroup\ngroup: {web: web*}\n",
     "unknown top-level key(s) 'group': a yamlgroup file has only 'plugin' and 'groups'"),
])
def test_file_level_errors_name_the_file(tmp_path, text, message):
    path = groups_file(tmp_path, text)
    with pytest.raises(AnsibleParserError) as error:
        parse(path)
    assert error.value.message == f"{path}: {message}"


@pytest.mark.parametrize(("content", "message"), [
    (b"plugin: yamlgroup\ngroups:\n  caf\xe9: web*\n", "not UTF-8: byte 0xe9 at offset 31"),
    (b"plugin: yamlgroup\ngroups:\n  web: &x ['web*', *x]\n",
     "refused: line 3, column 20: alias *x is inside the node it refers to (recursive data)"),
    (b"plugin: yamlgroup\ngroups: &g\n  web: *g\n",
     "refused: line 3, column 8: alias *g is inside the node it refers to (recursive data)"),
    (b"plugin: yamlgroup\nl0: &l0 [a, a, a, a, a, a, a, a, a, a]\n"
     + b"".join(b"l%d: &l%d [*l%d, *l%d, *l%d, *l%d, *l%d, *l%d, *l%d, *l%d, *l%d, *l%d]\n"
                % (i, i, *[i - 1] * 10) for i in range(1, 9)) + b"groups: {web: *l8}\n",
     "refused: line 6, column 45: the aliases expand to more than 100000 nodes (an alias bomb?)"),
    (b"plugin: yamlgroup\ngroups: {web: ['web*'\n", "not valid YAML: line 3, column 1: "
     "while parsing a flow sequence: expected ',' or ']', but got '<stream end>'"),
    (b"- plugin: yamlgroup\n", "expected a mapping with 'plugin' and 'groups', got a list"),
])
def test_a_file_the_bounded_reader_refuses_fails_with_the_reason(tmp_path, content, message):
    path = tmp_path / "groups.yaml"
    path.write_bytes(content)
    inventory = inventory_with()
    with pytest.raises(AnsibleParserError) as error:
        yamlgroup.InventoryModule().parse(inventory, DataLoader(), str(path))
    assert error.value.message == f"{path}: {message}"
    assert set(inventory.groups) == {"all", "ungrouped"}


def test_without_re2_the_plugin_warns_and_matches_with_pythons_re(tmp_path, monkeypatch):
    """A bastion's Ansible from before google-re2 must still read the groups,
    to deploy service-bastion.yaml, which installs it."""
    monkeypatch.setattr(yamlgroup, "re2", None)
    plugin, warnings = plugin_keeping_warnings()
    path = groups_file(tmp_path, "plugin: yamlgroup\ngroups:\n  web: ['web*', '!^web0[2-9]\\..*$']\n"
                                 "  bad: ['^(x']\n")
    inventory = inventory_with(hosts=["web01.example.org", "web02.example.org", "db01.example.org"])
    with pytest.raises(AnsibleParserError, match="invalid regular expression"):
        plugin.parse(inventory, DataLoader(), str(path))
    path.write_text("plugin: yamlgroup\ngroups:\n  web: ['web*', '!^web0[2-9]\\..*$']\n")
    plugin.parse(inventory, DataLoader(), str(path))
    inventory.reconcile_inventory()
    assert [h.name for h in inventory.groups["web"].get_hosts()] == ["web01.example.org"]
    assert warnings and all("google-re2 (module re2) is not installed" in w for w in warnings)


def test_a_file_read_before_the_hosts_warns(tmp_path):
    plugin, warnings = plugin_keeping_warnings()
    path = groups_file(tmp_path, "plugin: yamlgroup\ngroups:\n  web: web*\n")
    inventory = inventory_with(hosts=[])
    plugin.parse(inventory, DataLoader(), str(path))
    assert inventory.groups["web"].get_hosts() == []
    assert warnings == [f"{path}: no host in the inventory yet, so every yamlgroup group is empty; "
                        "list this source after the sources of the hosts"]


@pytest.mark.parametrize(("name", "text", "accepted"), [
    ("groups.yaml", "plugin: yamlgroup\ngroups: {}\n", True),
    ("groups.yml", "{plugin: 'yamlgroup', groups: {web: 'web*'}}\n", True),
    ("groups.yaml", "groups: {}\nplugin: yamlgroup\n", True),
    ("groups.json", '{"plugin": "yamlgroup", "groups": {}}\n', False),
    ("hosts.yaml", "all:\n  hosts:\n    web01:\n", False),
    ("other.yaml", "plugin: constructed\n", False),
    ("broken.yaml", "plugin: yamlgroup\ngroups: [\n", False),
    ("list.yaml", "- plugin: yamlgroup\n", False),
])
def test_verify_file_accepts_only_yamlgroup_yaml_files(tmp_path, name, text, accepted):
    path = tmp_path / name
    path.write_text(text)
    assert yamlgroup.InventoryModule().verify_file(str(path)) is accepted


# --- through ansible-inventory ------------------------------------------------


def test_end_to_end_with_group_vars_next_to_the_groups_file(tmp_path):
    (tmp_path / "hosts.yaml").write_text(
        "all:\n  hosts:\n" + "".join(f"    {host}:\n" for host in HOSTS))
    groups_file(tmp_path, """\
        plugin: yamlgroup
        groups:
          web: ["web*", '!^web03\\..*']
          ord: "*.ord.example.org"
          both: ["@web", "@ord"]
          disabled: []
        """, name="service/groups.yaml")
    (tmp_path / "service/group_vars").mkdir()
    (tmp_path / "service/group_vars/web.yaml").write_text("http_port: 8080\n")
    run = ansible("ansible-inventory", "--list", "-i", str(tmp_path / "hosts.yaml"),
                  "-i", str(tmp_path / "service/groups.yaml"))
    assert run.returncode == 0, run.stderr
    data = json.loads(run.stdout)
    assert data["web"]["hosts"] == ["web01.dfw.example.org", "web02.dfw.example.org"]
    assert data["ord"]["hosts"] == ["web03.ord.example.org", "db02.ord.example.org"]
    assert data["both"]["hosts"] == ["web01.dfw.example.org", "web02.dfw.example.org",
                                     "web03.ord.example.org", "db02.ord.example.org"]
    assert "disabled" in data["all"]["children"]
    assert data["_meta"]["hostvars"]["web01.dfw.example.org"]["http_port"] == 8080
    assert "http_port" not in data["_meta"]["hostvars"].get("web03.ord.example.org", {})


def test_end_to_end_an_error_fails_the_run_and_is_shown(tmp_path):
    (tmp_path / "hosts.yaml").write_text("all:\n  hosts:\n    web01:\n")
    path = groups_file(tmp_path, "plugin: yamlgroup\ngroups:\n  web: ['^web(']\n")
    run = ansible("ansible-inventory", "--list", "-i", str(tmp_path / "hosts.yaml"), "-i", str(path))
    assert run.returncode != 0
    stderr = " ".join(run.stderr.split())
    assert (f"{path}: group 'web', entry '^web(': invalid regular expression "
            "(RE2 syntax, which has no backreferences or lookarounds): missing ): ^web(") in stderr
    assert f"Completely failed to parse inventory source {path}" in stderr


@pytest.mark.parametrize(("setting", "group", "warning"), [
    (None, "zuul-executor", "Invalid characters were found in group names but not replaced"),
    ("always", "zuul_executor", "Invalid characters were found in group names and automatically replaced"),
])
def test_end_to_end_a_dashed_group_name_follows_the_setting(tmp_path, setting, group, warning):
    (tmp_path / "hosts.yaml").write_text("all:\n  hosts:\n    ze01.example.org:\n    zuul01.example.org:\n")
    path = groups_file(tmp_path, """\
        plugin: yamlgroup
        groups:
          zuul-executor: "ze[0-9]*.example.org"
          zuul: ["@zuul-executor", "zuul01.example.org"]
        """)
    env = dict(ENV, ANSIBLE_TRANSFORM_INVALID_GROUP_CHARS=setting) if setting else ENV
    run = subprocess.run(["ansible-inventory", "--list", "-i", str(tmp_path / "hosts.yaml"), "-i", str(path)],
                         cwd=ROOT, env=env, capture_output=True, text=True, check=False, timeout=120)
    assert run.returncode == 0, run.stderr
    data = json.loads(run.stdout)
    assert data[group]["hosts"] == ["ze01.example.org"]
    assert data["zuul"]["hosts"] == ["ze01.example.org", "zuul01.example.org"]
    assert warning in " ".join(run.stderr.split())


def test_production_groups():
    run = ansible("ansible-inventory", "--list")  # ansible.cfg's default sources
    assert run.returncode == 0, run.stderr
    data = json.loads(run.stdout)
    expected = {
        "bastion": ["bastion01.example.org"],
        "review": ["review01.example.org"],
        "pagure": [],
        "zookeeper": ["zk01.example.org", "zk02.example.org", "zk03.example.org"],
        "zuul": ["zuul01.example.org", "ze01.example.org", "ze02.example.org"],
        "zuul_scheduler": ["zuul01.example.org"],
        "zuul_executor": ["ze01.example.org", "ze02.example.org"],
        "zuul_database": ["zuul01.example.org"],
        "zuul_node": [],
        "etherpad": ["etherpad01.example.org"],
        "mirror": ["mirror01.dfw.example.org", "mirror01.ord.example.org"],
        "backup": ["backup01.dfw.example.org", "backup01.ord.example.org"],
        "backup_client": ["bastion01.example.org", "review01.example.org", "zuul01.example.org",
                          "etherpad01.example.org", "mirror01.dfw.example.org", "mirror01.ord.example.org"],
        "monitoring": ["monitor01.example.org"],
        "disabled": [],
    }
    assert {group: data.get(group, {}).get("hosts", []) for group in expected} == expected
    assert set(data["all"]["children"]) == {"ungrouped", *expected}
    assert data.get("ungrouped", {}).get("hosts", []) == []  # every production host runs a service


def test_production_playbook_pattern_excludes_disabled():
    run = ansible("ansible", "all:!disabled", "--list-hosts")
    assert run.returncode == 0, run.stderr
    assert "hosts (14):" in run.stdout


def test_ansible_doc_renders_the_documentation():
    run = ansible("ansible-doc", "-t", "inventory", "yamlgroup")
    assert run.returncode == 0, run.stderr
    assert "Reads a YAML file whose top-level `plugin' is `yamlgroup'" in " ".join(run.stdout.split())
    assert "EXAMPLES" in run.stdout


def test_an_exact_entry_that_is_no_host_name_warns(tmp_path):
    """A literal entry that is not a host name (checks.py's rule: a typo, most likely) still
    selects a host of exactly that name, and the plugin says so."""
    plugin, warnings = plugin_keeping_warnings()
    path = groups_file(tmp_path, "plugin: yamlgroup\ngroups:\n  web: ['web01 .example.org', "
                                 "'web02.example.org', '192.0.2.7', 'web*', '!db_1']\n")
    inventory = inventory_with(hosts=["web01 .example.org", "web02.example.org", "db_1"])
    plugin.parse(inventory, DataLoader(), str(path))
    inventory.reconcile_inventory()
    assert sorted(h.name for h in inventory.groups["web"].get_hosts()) == [
        "web01 .example.org", "web02.example.org"]
    assert [w.split(": ", 1)[1] for w in warnings] == [
        f"group 'web': entry {entry!r} has no wildcard and is not a host name (letters, digits, dots "
        "and dashes): it selects only a host named exactly that" for entry in ("web01 .example.org", "!db_1")]
