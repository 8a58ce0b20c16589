"""The CA's check of a host's certificate request (plugins/filter/pki.py).

The requests are given as community.crypto.openssl_csr_info returns them
(the shape below is its output for a request of the pki role's kind);
molecule/pki feeds the role a forged request from a host end to end.
"""

import pytest
from pki import FilterModule, csr_problems

SANS = ["DNS:etherpad01.devinfra.test", "DNS:etherpad01", "IP:192.0.2.10"]
USAGE = ["digitalSignature"]
EXTENDED = ["serverAuth", "clientAuth"]


def request(**changes):
    info = {
        "signature_valid": True,
        "subject": {"commonName": "etherpad01.devinfra.test"},
        "subject_ordered": [["commonName", "etherpad01.devinfra.test"]],
        "subject_alt_name": ["DNS:etherpad01.devinfra.test", "DNS:etherpad01", "IP:192.0.2.10"],
        "basic_constraints": ["CA:FALSE"],
        "basic_constraints_critical": True,
        "key_usage": ["Digital Signature"],
        "key_usage_critical": True,
        "extended_key_usage": ["TLS Web Client Authentication", "TLS Web Server Authentication"],
        "extensions_by_oid": {oid: {"critical": False, "value": ""}
                              for oid in ("2.5.29.15", "2.5.29.17", "2.5.29.19", "2.5.29.37")},
    }
    info.update(changes)
    return info


def problems(info):
    return csr_problems(info, "etherpad01.devinfra.test", SANS, USAGE, EXTENDED)


def test_the_filter_is_registered_under_its_name():
    assert FilterModule().filters()["devinfra_pki_csr_problems"] is csr_problems


def test_the_request_the_role_makes_is_signed():
    assert problems(request()) == []


def test_names_compare_regardless_of_order_case_and_openssls_ip_spelling():
    names = ["IP Address:192.0.2.10", "DNS:ETHERPAD01", "DNS:etherpad01.devinfra.test"]
    info = request(subject_alt_name=names)
    assert problems(info) == []


def test_another_hosts_names_are_refused_and_named():
    info = request(subject_alt_name=[*request()["subject_alt_name"], "DNS:zuul01", "DNS:zk01"])
    assert problems(info) == [
        "subject alternative names differ from the inventory's (names it may not have: DNS:zk01, DNS:zuul01)"]


def test_a_missing_name_is_refused():
    info = request(subject_alt_name=["DNS:etherpad01.devinfra.test"])
    assert problems(info) == ["subject alternative names differ from the inventory's "
                              "(missing: DNS:etherpad01, IP:192.0.2.10)"]


@pytest.mark.parametrize(("changes", "start"), [
    ({"subject_ordered": [["commonName", "zuul01"]]}, "subject is commonName=zuul01"),
    ({"subject_ordered": [["commonName", "etherpad01.devinfra.test"], ["organizationName", "x"]]},
     "subject is commonName=etherpad01.devinfra.test, organizationName=x"),
    ({"basic_constraints": ["CA:TRUE"]}, "basic constraints are ['CA:TRUE']"),
    ({"basic_constraints": None, "basic_constraints_critical": False}, "basic constraints are None"),
    ({"key_usage": ["Digital Signature", "Certificate Sign"]}, "key usage is"),
    ({"key_usage_critical": False}, "key usage is"),
    ({"extended_key_usage": ["Code Signing"]}, "extended key usage is ['Code Signing']"),
    ({"extensions_by_oid": {**request()["extensions_by_oid"], "2.5.29.30": {}}},
     "extensions the role never asks for: 2.5.29.30"),
    ({"signature_valid": False}, "its signature does not verify"),
], ids=["other-host", "extra-subject", "ca", "no-constraints", "cert-sign", "not-critical", "code-signing",
        "name-constraints", "bad-signature"])
def test_each_thing_a_host_may_not_ask_for_is_refused(changes, start):
    found = problems(request(**changes))
    assert len(found) == 1 and found[0].startswith(start), found
