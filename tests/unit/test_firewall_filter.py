import pytest
from ansible.errors import AnsibleFilterError
from firewall import FilterModule, firewall_rules


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
