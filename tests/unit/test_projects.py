"""The projects file, its ACL templates, the Zuul tenant and the config project."""

from pathlib import Path

import pytest
import yaml
from ansible.errors import AnsibleFilterError

from projects import FilterModule, pagure, projects, zuul_tenant

ROOT = Path(__file__).resolve().parents[2]


def acls():
    return {p.stem: yaml.safe_load(p.read_text()) for p in (ROOT / "projects/acls").glob("*.yaml")}


def repo_projects():
    return projects(yaml.safe_load((ROOT / "projects/projects.yaml").read_text()), acls())


def test_filters_are_registered():
    assert set(FilterModule().filters()) == {"devinfra_projects", "devinfra_zuul_tenant", "devinfra_pagure"}


def test_the_repository_projects_file_is_valid_and_complete():
    entries = repo_projects()
    assert {p["project"] for p in entries} >= {"devinfra/zuul-config", "devinfra/system-config"}
    config = next(p for p in entries if p["project"] == "devinfra/system-config")
    assert config["core_group"] == "infra-core"
    rules = config["access"]["refs/heads/*"]["permissions"]["label-Code-Review"]["rules"]
    assert rules["infra-core"] == {"action": "ALLOW", "min": -2, "max": 2}
    sandbox = next(p for p in entries if p["project"] == "sandbox/sandbox")
    assert sandbox["core_group"] == "sandbox-core" and sandbox["acl"] == "default"
    assert sandbox["parent"] == "All-Projects" and sandbox["state"] == "present"


def test_tenant_lists_config_and_checked_projects_only():
    entries = projects([
        {"project": "infra/config", "zuul": "config"},
        {"project": "a/gated", "zuul": "gate"},
        {"project": "a/checked", "zuul": "check"},
        {"project": "a/plain"},
    ], {"default": {}})
    assert zuul_tenant(entries, "t") == {"tenant": {"name": "t", "source": {"gerrit": {
        "config-projects": ["infra/config"], "untrusted-projects": ["a/gated", "a/checked"]}}}}


def test_tenant_needs_a_config_project():
    with pytest.raises(AnsibleFilterError, match="no project has `zuul: config`"):
        zuul_tenant(projects([{"project": "a/b", "zuul": "gate"}], {"default": {}}), "t")


@pytest.mark.parametrize(("entry", "message"), [
    ({"project": "a/b", "colour": "red"}, r"projects\[0\] \(a/b\): unknown field\(s\) colour"),
    ({"project": "/a"}, "project name '/a' is not a valid Gerrit project name"),
    ({"project": "a/b.git"}, "is not a valid Gerrit project name"),
    ({"project": "a b"}, "is not a valid Gerrit project name"),
    ({"project": "a/b", "acl": "nope"}, "acl 'nope' has no template"),
    ({"project": "a/b", "state": "gone"}, "state 'gone' is not one of"),
    ({"project": "a/b", "zuul": "maybe"}, "zuul 'maybe' is not one of"),
    ("a/b", r"projects\[0\]: expected a mapping"),
])
def test_bad_entries_are_named(entry, message):
    with pytest.raises(AnsibleFilterError, match=message):
        projects([entry], {"default": {}})


@pytest.mark.parametrize(("entry", "message"), [
    ({"project": "a/b\n"},
     r"projects\[0\] \('a/b\\n'\): project name 'a/b\\n' is not a valid Gerrit project name"),
    ({"project": "a/b", "parent": "../../etc"},
     r"projects\[0\] \(a/b\): parent '\.\./\.\./etc' is not a valid Gerrit project name"),
    ({"project": "a/b", "parent": "All-Projects\n"}, r"\(a/b\): parent 'All-Projects\\n' is not a valid"),
    ({"project": "a/b", "parent": ["All-Projects"]}, r"\(a/b\): parent \['All-Projects'\] is not a valid"),
    ({"project": "a/b", "core_group": "../../etc"},
     r"projects\[0\] \(a/b\): core_group '\.\./\.\./etc' is not a valid group name"),
    ({"project": "a/b", "core_group": "b-core\n"},
     r"\(a/b\): core_group 'b-core\\n' is not a valid group name"),
    ({"project": "a/b", "core_group": ""}, r"\(a/b\): core_group '' is not a valid group name"),
    ({"project": "a/b", "core_group": 42}, r"projects\[0\] \(a/b\): core_group 42 must be a string"),
    ({"project": "a/b", "acl": ["default"]}, r"projects\[0\] \(a/b\): acl \['default'\] must be a string"),
    ({"project": "a/b", "acl": {"name": "default"}}, r"\(a/b\): acl \{'name': 'default'\} must be a string"),
    ({"project": "a/b", "description": ["two", "lines"]},
     r"\(a/b\): description \['two', 'lines'\] must be a string"),
    ({"project": "a/b", 1: "one", "two": 2}, r"\(a/b\): unknown field\(s\) 1, two"),
    ({"project": "a/b", "state": ["present"]}, r"\(a/b\): state \['present'\] is not one of"),
])
def test_bad_names_and_types_are_errors_naming_the_project_and_the_key(entry, message):
    with pytest.raises(AnsibleFilterError, match=message):
        projects([entry], {"default": {}})


def test_bad_types_are_errors_also_without_acl_templates():
    with pytest.raises(AnsibleFilterError, match=r"\(a/b\): acl \['default'\] must be a string"):
        projects([{"project": "a/b", "acl": ["default"]}])
    with pytest.raises(AnsibleFilterError, match=r"\(a/b\): core_group 42 must be a string"):
        projects([{"project": "a/b", "core_group": 42}])


def test_a_null_parent_or_core_group_takes_the_default():
    entry = projects([{"project": "a/b", "parent": None, "core_group": None}], {"default": {}})[0]
    assert (entry["parent"], entry["core_group"]) == ("All-Projects", "b-core")


def test_a_project_listed_twice_is_refused():
    with pytest.raises(AnsibleFilterError, match=r"projects\[1\] \(a/b\): project a/b is listed twice"):
        projects([{"project": "a/b"}, {"project": "a/b"}], {"default": {}})


def test_config_project_templates_match_the_projects_file():
    stanzas = yaml.safe_load((ROOT / "zuul-config/zuul.d/projects.yaml").read_text())
    declared = {s["project"]["name"]: s["project"]["templates"] for s in stanzas}
    expected = {p["project"]: ["devinfra-gated" if p["zuul"] in ("gate", "config") else "devinfra-checked"]
                for p in repo_projects() if p["zuul"] != "none"}
    assert declared == expected, "update zuul-config/zuul.d/projects.yaml to match projects/projects.yaml"


def test_pipelines_report_to_a_defined_connection():
    pipelines = [p["pipeline"] for p in yaml.safe_load(
        (ROOT / "zuul-config/zuul.d/pipelines.yaml").read_text())]
    connections = {c["name"] for c in yaml.safe_load(
        (ROOT / "inventory/service/group_vars/zuul.yaml").read_text())["zuul_connections"]}
    assert {p["name"] for p in pipelines} == {"check", "gate", "deploy", "periodic"}
    for pipeline in pipelines:
        for section in ("trigger", "success", "failure"):
            # timer is Zuul's built-in driver, not a connection.
            assert set(pipeline.get(section, {})) <= connections | {"timer"}, (pipeline["name"], section)
    assert next(p for p in pipelines if p["name"] == "deploy")["manager"] == "serial"
    templates = yaml.safe_load((ROOT / "zuul-config/zuul.d/project-templates.yaml").read_text())
    for template in templates:
        assert set(template["project-template"]) - {"name", "description"} <= {p["name"] for p in pipelines}


def test_pagure_gets_every_project_its_core_group_with_members_and_the_bot():
    members = {"infra-core": ["alice"], "sandbox-core": ["alice", "carol"]}
    out = pagure(repo_projects(), members, "zuul", "https://zuul01/api/connection/pagure/payload")
    names = {p["name"] for p in out["projects"]}
    assert names == {p["project"] for p in repo_projects()}
    system = next(p for p in out["projects"] if p["name"] == "devinfra/system-config")
    assert system["groups"] == {"infra-core": "commit"} and system["users"] == {"zuul": "commit"}
    assert system["settings"] == {"pull_requests": True,
                                  "Web-hooks": "https://zuul01/api/connection/pagure/payload"}
    assert {g["name"]: g["members"] for g in out["groups"]} == {"infra-core": ["alice"],
                                                                "sandbox-core": ["alice", "carol"]}


def test_pagure_refuses_a_core_group_without_members_naming_the_project():
    with pytest.raises(AnsibleFilterError) as error:
        pagure(repo_projects(), {"infra-core": ["alice"], "sandbox-core": []}, "zuul")
    assert "(sandbox/sandbox): core group sandbox-core has no members" in str(error.value)


def test_pagure_refuses_an_unknown_acl_template_before_anything():
    with pytest.raises(AnsibleFilterError) as error:
        projects([{"project": "x/y", "acl": "nonesuch"}], acls())
    assert "projects[0] (x/y): acl 'nonesuch' has no template" in str(error.value)
