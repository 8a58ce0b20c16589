"""The tenant configuration check (plugins/filter/zuul.py)."""

import pytest
from zuul import FilterModule, tenants

CONNECTIONS = ["gerrit", "local"]
HOSTED = ["devinfra/zuul-config", "devinfra/zuul-site", "sandbox/sandbox"]


def tenant(**body):
    return [{"tenant": {"name": "t", **body}}]


def check(config, local_projects=HOSTED):
    return tenants(config, CONNECTIONS, "local", local_projects)


GOOD = tenant(**{
    "use-nodepool": False,
    "source": {
        "gerrit": {"config-projects": ["devinfra/zuul-config"], "untrusted-projects": ["a/b"]},
        "local": {"config-projects": [{"devinfra/zuul-site": {"exclude": ["pipeline"]}}],
                  "untrusted-projects": ["sandbox/sandbox"]},
    }})


def test_the_filter_is_registered():
    assert FilterModule().filters() == {"devinfra_zuul_tenants": tenants}


def test_a_sound_configuration_comes_back_unchanged():
    assert check(GOOD) == GOOD


def test_other_top_level_objects_are_allowed():
    config = [{"admin-rule": {"name": "admins", "conditions": []}}] + GOOD
    assert check(config) == config


@pytest.mark.parametrize("config, message", [
    ({"tenant": {}}, "must be a list"),
    ([{"tenants": {"name": "t"}}], r"zuul_tenants\[0\]: each entry is one of"),
    ([{"tenant": {"source": {}}}], "a tenant needs a name"),
    (GOOD + GOOD, r"zuul_tenants\[1\] \(tenant t\): tenant defined twice"),
    (tenant(maxnodes=3, source={"local": {}}), r"\(tenant t\): unknown key\(s\) maxnodes"),
    (tenant(source={}), "source must map connection names"),
    (tenant(source={"github": {"config-projects": ["x/y"]}}),
     r"source.github: connection github is not defined in zuul.conf \(defined: gerrit, local, timer, zuul\)"),
    (tenant(source={"gerrit": {"config-project": ["x/y"]}}), "source.gerrit: expected a mapping with"),
    (tenant(source={"gerrit": {"config-projects": "x/y"}}), r"source.gerrit.config-projects: must be a list"),
    (tenant(source={"gerrit": {"config-projects": [3]}}), r"config-projects\[0\]: expected a project name"),
    (tenant(source={"gerrit": {"config-projects": [{"x/y": {"exclud": ["job"]}}]}}),
     r"project x/y: unknown option\(s\) exclud"),
    (tenant(source={"gerrit": {"config-projects": [{"x/y": {"exclude": ["jobs"]}}]}}),
     r"project x/y: exclude names unknown class\(es\) jobs"),
    (tenant(source={"gerrit": {"config-projects": ["x/y"], "untrusted-projects": ["x/y"]}}),
     r"untrusted-projects\[0\]: project x/y is listed twice"),
    (tenant(source={"local": {"untrusted-projects": ["not/hosted"]}}),
     r"source.local.untrusted-projects\[0\]: project not/hosted is not a repository the scheduler hosts"),
])
def test_mistakes_name_the_tenant_and_the_field(config, message):
    with pytest.raises(Exception, match=message) as error:
        check(config)
    assert str(error.value).startswith("zuul_tenants")
