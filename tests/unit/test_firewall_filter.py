import ipaddress
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from ansible.errors import AnsibleFilterError
from firewall import FilterModule, firewall_rules

ROOT = Path(__file__).resolve().parents[2]


def test_filter_is_registered_under_its_name():
    assert FilterModule().filters()["devinfra_firewall_rules"] is firewall_rules


def test_rules_from_several_variables_are_merged_sorted_and_deduplicated():
    rules = firewall_rules({
        "base_firewall_allow": [{"port": 22, "comment": "ssh"}],
        "base_firewall_allow_zuul": [
            {"port": "443", "proto": "tcp"},
            {"port": 22, "proto": "tcp"},
            {"port": "2888-3888", "source": "10.0.0.0/8"},
            {"port": 53, "proto": "udp", "source": "2001:db8::1"},
        ],
    })
    assert [(r["proto"], r["port"], r["source"], r["family"]) for r in rules] == [
        ("tcp", "22", "", ""),
        ("udp", "53", "2001:db8::1/128", "ip6"),
        ("tcp", "443", "", ""),
        ("tcp", "2888-3888", "10.0.0.0/8", "ip"),
    ]
    assert rules[0]["comment"] == "ssh"  # the duplicate without comment did not replace it


def test_none_lists_are_ignored():
    assert firewall_rules({"base_firewall_allow": None}) == []


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"port": 70000}, "base_firewall_allow_x[0]: port 70000 is outside 1-65535"),
        ({"port": "http"}, "is not a number or a 'first-last' range"),
        ({"port": "90-80"}, "must go upwards"),
        ({"port": 22, "proto": "sctp"}, "proto 'sctp' is not tcp or udp"),
        ({"port": 22, "source": "10.0.0.300"}, "is not an address or CIDR network"),
        ({"port": 22, "prot": "tcp"}, "unknown key(s) prot"),
        ({"proto": "tcp"}, "missing port"),
        ("22", "expected a mapping with a port"),
    ],
)
def test_bad_entries_name_the_variable_and_index(entry, message):
    with pytest.raises(AnsibleFilterError) as err:
        firewall_rules({"base_firewall_allow_x": [entry]})
    assert "base_firewall_allow_x[0]" in str(err.value)
    assert message in str(err.value)


def test_a_variable_that_is_not_a_list_is_refused():
    with pytest.raises(AnsibleFilterError, match="base_firewall_allow_y is not a list"):
        firewall_rules({"base_firewall_allow_y": "22"})


def test_input_must_be_a_mapping():
    with pytest.raises(AnsibleFilterError, match="expects a mapping"):
        firewall_rules([[{"port": 22}]])


# --- source_groups: the addresses of inventory groups' hosts ---------------

GROUPS = {
    "all": ["zk1", "zuul1", "ze1", "web1", "dual1", "v6only"],
    "zuul": ["zuul1", "ze1"],
    "facts_only": ["ze1"],
    "configured": ["dual1"],
    "ipv6": ["v6only"],
    "disabled": [],
}
HOSTVARS = {
    "zk1": {"ansible_host": "192.0.2.31"},
    "zuul1": {"ansible_host": "192.0.2.40"},
    # Reached by name: the address comes from its gathered facts.
    "ze1": {"ansible_host": "ze1.example.test",
            "ansible_facts": {"default_ipv4": {"address": "192.0.2.41"},
                              "default_ipv6": {"address": "2001:db8::41"}}},
    "web1": {"ansible_host": "web1.example.test", "ansible_facts": {}},
    # base_host_addresses wins over ansible_host and facts.
    "dual1": {"ansible_host": "192.0.2.60", "base_host_addresses": ["192.0.2.61", "2001:db8::61"],
              "ansible_facts": {"default_ipv4": {"address": "192.0.2.62"}}},
    "v6only": {"ansible_host": "2001:db8::70"},
}


def group_rules(rule, groups=GROUPS, hostvars=HOSTVARS):
    rules = firewall_rules({"base_firewall_allow_x": [rule]}, groups, hostvars)
    return [(r["family"], r["source"], r["port"], r["comment"]) for r in rules]


def test_source_groups_accept_the_addresses_of_the_groups_hosts():
    assert group_rules({"port": 2281, "source_groups": ["zuul"], "comment": "zk clients"}) == [
        ("ip", "192.0.2.40/32", "2281", "zk clients (zuul1)"),
        ("ip", "192.0.2.41/32", "2281", "zk clients (ze1)"),
        ("ip6", "2001:db8::41/128", "2281", "zk clients (ze1)"),
    ]


def test_a_host_reached_by_name_gives_the_addresses_of_its_facts():
    assert group_rules({"port": 7900, "source_groups": ["facts_only"]}) == [
        ("ip", "192.0.2.41/32", "7900", "ze1"),
        ("ip6", "2001:db8::41/128", "7900", "ze1"),
    ]


def test_base_host_addresses_win_over_ansible_host_and_facts():
    assert group_rules({"port": 5432, "source_groups": ["configured"]}) == [
        ("ip", "192.0.2.61/32", "5432", "dual1"),
        ("ip6", "2001:db8::61/128", "5432", "dual1"),
    ]


def test_an_ipv6_ansible_host_gives_an_ip6_rule():
    assert group_rules({"port": 22, "source_groups": ["ipv6"]}) == [
        ("ip6", "2001:db8::70/128", "22", "v6only")]


def test_an_inventory_name_that_is_an_address_stands_for_ansible_host():
    rules = group_rules({"port": 22, "source_groups": ["all"]}, {"all": ["192.0.2.9"]}, {"192.0.2.9": {}})
    assert rules == [("ip", "192.0.2.9/32", "22", "192.0.2.9")]


def test_hosts_in_several_groups_and_repeated_rules_give_one_rule_per_address():
    rules = firewall_rules({
        "base_firewall_allow_a": [{"port": 2281, "source_groups": ["zuul", "facts_only"]}],
        "base_firewall_allow_b": [{"port": 2281, "source_groups": ["facts_only"]}],
    }, GROUPS, HOSTVARS)
    assert [r["source"] for r in rules] == ["192.0.2.40/32", "192.0.2.41/32", "2001:db8::41/128"]


def test_an_empty_group_gives_no_rule_so_the_port_stays_closed():
    assert firewall_rules({"base_firewall_allow_x": [{"port": 2281, "source_groups": ["disabled"]}]},
                          GROUPS, HOSTVARS) == []


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"port": 2281, "source_groups": ["zuul_sheduler"]},
         "base_firewall_allow_x[0]: source_groups: no group 'zuul_sheduler' in the inventory"),
        ({"port": 2281, "source_groups": ["all"]},
         "base_firewall_allow_x[0]: source_groups: no address known for host web1 (group all): "),
        ({"port": 2281, "source": "192.0.2.0/24", "source_groups": ["zuul"]},
         "base_firewall_allow_x[0]: has both source and source_groups"),
        ({"port": 2281, "source_groups": "zuul"}, "source_groups must be a non-empty list of group names"),
        ({"port": 2281, "source_groups": []}, "source_groups must be a non-empty list of group names"),
    ],
    ids=["unknown-group", "unknown-address", "source-and-source-groups", "not-a-list", "empty-list"],
)
def test_bad_source_groups_name_the_variable_and_index(entry, message):
    with pytest.raises(AnsibleFilterError) as err:
        firewall_rules({"base_firewall_allow_x": [entry]}, GROUPS, HOSTVARS)
    assert message in str(err.value)


def test_an_unknown_address_says_how_to_make_it_known():
    with pytest.raises(AnsibleFilterError) as err:
        firewall_rules({"base_firewall_allow_x": [{"port": 2281, "source_groups": ["all"]}]},
                       GROUPS, HOSTVARS)
    assert "Gather that host's facts in the play" in str(err.value)
    assert "base_host_addresses" in str(err.value)


@pytest.mark.parametrize("configured", ["192.0.2.5", ["192.0.2.0/24"], ["web1"]])
def test_bad_base_host_addresses_name_the_host(configured):
    with pytest.raises(AnsibleFilterError) as err:
        group_rules({"port": 22, "source_groups": ["all"]},
                    {"all": ["web1"]}, {"web1": {"base_host_addresses": configured}})
    assert "base_firewall_allow_x[0]: base_host_addresses of host web1 (group all)" in str(err.value)


def test_source_groups_without_the_inventory_is_refused():
    with pytest.raises(AnsibleFilterError, match=r"call devinfra_firewall_rules\(groups, hostvars\)"):
        firewall_rules({"base_firewall_allow_x": [{"port": 22, "source_groups": ["zuul"]}]})


# --- the production inventory, rendered by the role -------------------------

PRODUCTION = ["-i", "inventory/base/hosts.yaml", "-i", "inventory/service/groups.yaml"]
# The role's own tasks build the rules, the role's template renders them;
# nothing connects to a host (set_fact, assert, and a template written here).
RENDER_PLAYBOOK = """\
- name: Render the firewall of some hosts without reaching them
  hosts: "{{ render_hosts }}"
  connection: local
  gather_facts: false
  vars:
    ansible_python_interpreter: "{{ ansible_playbook_python }}"
  tasks:
    - name: Check the rules as the base role does (its vars, base_firewall_rules, public)
      ansible.builtin.include_role:
        name: base
        tasks_from: validate
        public: true
    - name: Render the nftables ruleset
      ansible.builtin.template:
        src: "{{ root }}/roles/base/templates/nftables.conf.j2"
        dest: "{{ out }}/{{ inventory_hostname }}.nft"
        mode: "0644"
"""
RULE = re.compile(r"^\s*(?:(?:ip|ip6) saddr (\S+) )?(tcp|udp) dport (\S+) accept", re.M)


def ansible(tmp_path, *args):
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               # Facts of earlier runs (.cache/facts) must not decide a test.
               ANSIBLE_CACHE_PLUGIN_CONNECTION=str(tmp_path / "facts"),
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    return subprocess.run(list(args), cwd=ROOT, env=env, capture_output=True, text=True,
                          check=False, timeout=120)


def run_render(tmp_path, inventory, hosts):
    """RENDER_PLAYBOOK on these hosts; each ruleset lands in tmp_path/<host>.nft."""
    playbook = tmp_path / "render.yaml"
    playbook.write_text(RENDER_PLAYBOOK)
    return ansible(tmp_path, "ansible-playbook", *inventory, str(playbook), "-e", json.dumps(
        {"render_hosts": ",".join(hosts), "root": str(ROOT), "out": str(tmp_path)}))


def render(tmp_path, inventory, hosts):
    """Each host's rendered ruleset as {(proto, port): {accepted source networks}}."""
    run = run_render(tmp_path, inventory, hosts)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    rendered = {}
    for host in hosts:
        rules: dict[tuple[str, str], set] = {}
        for source, proto, port in RULE.findall((tmp_path / f"{host}.nft").read_text()):
            networks = [ipaddress.ip_network(source)] if source else [
                ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0")]
            rules.setdefault((proto, port), set()).update(networks)
        rendered[host] = rules
    return rendered


def accepted(rules, port, proto="tcp"):
    """The source networks a ruleset accepts on a port (ranges included)."""
    networks = set()
    for (rule_proto, ports), sources in rules.items():
        low, _, high = ports.partition("-")
        if rule_proto == proto and int(low) <= port <= int(high or low):
            networks |= sources
    return networks


@pytest.fixture(scope="module")
def production(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("production")
    listing = ansible(tmp_path, "ansible-inventory", *PRODUCTION, "--list")
    assert listing.returncode == 0, listing.stderr
    inventory = json.loads(listing.stdout)
    hostvars = inventory["_meta"]["hostvars"]

    def addresses(group):
        hosts = inventory[group]["hosts"]
        assert hosts, f"group {group} has no host"
        return {ipaddress.ip_network(address)
                for host in hosts
                for address in hostvars[host].get("base_host_addresses") or [hostvars[host]["ansible_host"]]}

    database = inventory["zuul_database"]["hosts"][0]
    rendered = render(tmp_path, PRODUCTION, ["zk01.example.org", "ze01.example.org", database])
    return {"zk": rendered["zk01.example.org"], "ze": rendered["ze01.example.org"],
            "db": rendered[database], "zuul": addresses("zuul"), "zookeeper": addresses("zookeeper"),
            "etherpad": ipaddress.ip_address(hostvars["etherpad01.example.org"]["ansible_host"])}


def test_production_zookeeper_clients_are_zuuls_hosts_only(production):
    assert accepted(production["zk"], 2281) == production["zuul"]
    assert not any(production["etherpad"] in net for net in accepted(production["zk"], 2281))


def test_production_zookeeper_quorum_is_the_ensemble_only(production):
    assert len(production["zookeeper"]) == 3
    for port in (2888, 3181, 3888):
        assert accepted(production["zk"], port) == production["zookeeper"], port


def test_production_database_serves_zuuls_hosts_only(production):
    assert accepted(production["db"], 5432) == production["zuul"]
    assert not any(production["etherpad"] in net for net in accepted(production["db"], 5432))


def test_production_executor_log_streaming_serves_zuuls_hosts_only(production):
    assert accepted(production["ze"], 7900) == production["zuul"]


def test_production_public_ports_stay_open_to_everyone(production):
    everyone = {ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0")}
    assert accepted(production["zk"], 22) == everyone
    assert accepted(production["ze"], 443) == everyone


def test_a_host_without_a_known_address_fails_the_play_with_a_clear_message(tmp_path):
    inventory = tmp_path / "hosts.yaml"
    inventory.write_text(
        "all:\n"
        "  hosts:\n"
        "    zk1: {ansible_host: 192.0.2.31}\n"
        "    zuul1: {ansible_host: zuul1.example.test}\n"
        "  children:\n"
        "    zuul: {hosts: {zuul1: {}}}\n"
        "    zookeeper:\n"
        "      hosts: {zk1: {}}\n"
        "      vars:\n"
        "        base_firewall_allow_zookeeper: [{port: 2281, source_groups: [zuul]}]\n")
    run = run_render(tmp_path, ["-i", str(inventory)], ["zk1"])
    assert run.returncode != 0
    output = run.stdout + run.stderr
    assert ("base_firewall_allow_zookeeper[0]: source_groups: no address known for host zuul1 "
            "(group zuul)") in output, output
    assert "Traceback" not in output
    assert not (tmp_path / "zk1.nft").exists()
