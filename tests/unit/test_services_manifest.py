"""services.yaml against what repeats it: the playbooks, site.yaml and zuul.d's jobs.

Each test names what disagrees with the manifest and where to fix it. The
file matchers are judged as devinfra.plan judges them (RE2, Zuul's
semantics), for every file of the working tree, both ways.
"""

import functools
import json
import os
import subprocess
from pathlib import Path

import pytest

from devinfra import plan, services

ROOT = Path(__file__).resolve().parents[2]
ZUUL_D = ROOT / "zuul.d"


@functools.cache
def manifest() -> services.Manifest:
    return services.load(ROOT)


@functools.cache
def zuul():
    return plan.load_zuul_dir(ZUUL_D)


def pipeline(name: str) -> dict[str, dict]:
    jobs, projects = zuul()
    return dict(plan.pipeline_jobs(projects, name, jobs))


@functools.cache
def tree_files() -> tuple[str, ...]:
    """The working tree's files: tracked and untracked (not ignored), deleted ones left out."""
    listed = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others",
                             "--exclude-standard"], capture_output=True, text=True, check=True).stdout
    return tuple(sorted({f for f in listed.split("\0") if f and (ROOT / f).is_file()}))


SERVICES = [s.name for s in manifest().services.values()]
SCENARIOS = list(manifest().scenarios)


# --- the playbooks --------------------------------------------------------

def test_every_service_playbook_is_in_the_manifest():
    listed = {s.playbook_path for s in manifest().services.values()}
    on_disk = {str(p.relative_to(ROOT)) for p in (ROOT / "playbooks").glob("service-*.yaml")}
    assert sorted(on_disk - listed) == [], "add these playbooks to services.yaml"
    missing = sorted(p for p in listed if not (ROOT / p).is_file())
    assert missing == [], "services.yaml names playbooks that do not exist"


def _applied(plays: list[services.Play]) -> dict[str, set[str]]:
    applied: dict[str, set[str]] = {}
    for play in plays:
        if not play.is_check:
            for role, groups in play.roles.items():
                applied.setdefault(role, set()).update(groups)
    return applied


@pytest.mark.parametrize("name", SERVICES)
def test_the_playbook_applies_the_manifests_roles_to_its_groups(name):
    service = manifest().services[name]
    plays = services.plays(ROOT, service.playbook_path)
    applied = _applied(plays)
    where = f"{service.playbook_path} (service {name} in services.yaml)"
    assert list(applied) == list(service.roles), (
        f"{where}: the playbook applies the roles {list(applied)}, in this order; services.yaml says "
        f"{list(service.roles)}")
    for role, groups in service.roles.items():
        assert applied[role] == set(groups), (
            f"{where}: role {role} is applied to {sorted(applied[role])}; "
            f"services.yaml says {sorted(groups)}")
    targeted = {g for play in plays for g in play.groups}
    assert targeted == set(service.groups), (
        f"{where}: the plays target the groups {sorted(targeted)}; "
        f"services.yaml says {sorted(service.groups)}")


@pytest.mark.parametrize("name", SERVICES)
def test_the_check_play_checks_every_role_before_any_changes(name):
    service = manifest().services[name]
    plays = services.plays(ROOT, service.playbook_path)
    where = f"{service.playbook_path} (service {name} in services.yaml)"
    checks = [p.name for p in plays if p.is_check]
    if not service.check_play:
        assert checks == [], f"{where}: check_play is false, but the playbook has a check play: {checks}"
        return
    first = plays[0]
    is_check = first.is_check
    assert is_check, (
        f"{where}: the first play must check every role's variables (include_role tasks_from: validate "
        f"only), as in playbooks/service-etherpad.yaml; it is {first.name!r}")
    assert checks == [first.name], f"{where}: one check play, the first; found {checks}"
    assert first.attrs.get("gather_facts") is False and first.attrs.get("any_errors_fatal") is True, (
        f"{where}: the check play needs gather_facts: false and any_errors_fatal: true")
    assert set(first.groups) == set(service.groups), (
        f"{where}: the check play targets {sorted(first.groups)}, the service's groups are "
        f"{sorted(service.groups)}")
    expected = [r for r in service.roles if (ROOT / "roles" / r / "tasks" / "validate.yaml").is_file()]
    assert list(first.validates) == expected, (
        f"{where}: the check play validates {list(first.validates)}; every role with tasks/validate.yaml, "
        f"in the manifest's order, is {expected}")
    for role in expected:
        assert set(first.validates[role]) == set(service.roles[role]), (
            f"{where}: the check play validates role {role} on {sorted(first.validates[role])}; it is "
            f"applied to {sorted(service.roles[role])} (when: inventory_hostname in groups['...'])")


def test_site_imports_the_service_playbooks_in_the_manifests_order():
    imported = [play.imports[0] for play in services.plays(ROOT, "playbooks/site.yaml") if play.imports]
    first_seen = list(dict.fromkeys(imported))
    expected = [s.playbook_path for s in manifest().services.values() if s.site]
    assert first_seen == expected, (
        "playbooks/site.yaml imports the playbooks in another order than services.yaml lists the services "
        f"(site: true): {first_seen} != {expected}")


# --- zuul.d: deploy jobs ---------------------------------------------------

def test_the_deploy_pipeline_runs_one_job_per_service_in_the_manifests_order():
    deploy = pipeline("deploy")
    expected = [s.deploy_job for s in manifest().services.values()]
    assert list(deploy) == expected, (
        f"zuul.d/project.yaml's deploy jobs {list(deploy)} != services.yaml's {expected}")
    jobs, _ = zuul()
    for service in manifest().services.values():
        attrs = deploy[service.deploy_job]
        where = f"zuul.d job {service.deploy_job} (service {service.name} in services.yaml)"
        assert attrs["vars"]["devinfra_deploy_playbook"] == service.playbook, where
        waits = plan.dependencies(attrs.get("dependencies"), where)
        expected_waits = [(manifest().services[dep].deploy_job, True) for dep in service.after]
        assert waits == expected_waits, (
            f"{where}: dependencies {waits} != after: {list(service.after)} (as soft dependencies)")
        assert "files" in jobs[service.deploy_job].attrs, (
            f"{where}: a deploy job needs files of its own (its parent's are the shared ones only)")


def _disagreements(job: str, attrs: dict, parts: services.Parts, what: str) -> list[str]:
    """Each file of the tree whose selection of the job (as plan selects) and
    membership of the service or scenario (as the manifest says) disagree."""
    why = services.why(parts)
    irrelevant = attrs.get("irrelevant-files")
    problems = []
    for path in tree_files():
        if irrelevant and not plan.selects({"irrelevant-files": irrelevant}, [path], job)[0]:
            continue  # the job's irrelevant-files leave it out, whatever the manifest says
        selected, reason = plan.selects({"files": attrs.get("files")}, [path], job)
        member = why(path)
        if member and not selected:
            problems.append(f"{job}: {path} is part of {what} ({member}), but no files regex of {job} "
                            "in zuul.d matches it")
        elif selected and not member:
            problems.append(f"{job}: {reason}, but {path} is not part of {what}: narrow the regex, "
                            "or add the path to its follows (or the role to its roles)")
    return problems


@pytest.mark.parametrize("name", SERVICES)
def test_each_deploy_job_follows_exactly_the_files_of_its_service(name):
    service = manifest().services[name]
    problems = _disagreements(service.deploy_job, pipeline("deploy")[service.deploy_job],
                              services.service_parts(ROOT, manifest(), service),
                              f"service {name} in services.yaml")
    assert not problems, "\n".join(problems)


# --- zuul.d: molecule jobs -------------------------------------------------

def test_every_scenario_is_in_the_manifest_with_its_check_job():
    on_disk = {p.parent.name for p in (ROOT / "molecule").glob("*/molecule.yml")}
    assert set(SCENARIOS) == on_disk, "services.yaml's scenarios are not molecule/'s"
    check = pipeline("check")
    molecule_jobs = {name for name, attrs in check.items()
                     if (attrs.get("vars") or {}).get("devinfra_molecule_scenario")}
    assert molecule_jobs == {s.job for s in manifest().scenarios.values()}
    for scenario in manifest().scenarios.values():
        assert check[scenario.job]["vars"]["devinfra_molecule_scenario"] == scenario.name, scenario.job


@pytest.mark.parametrize("name", SCENARIOS)
def test_each_scenario_applies_the_manifests_roles_and_playbooks(name):
    scenario = manifest().scenarios[name]
    plays = services.scenario_playbooks(ROOT, name)
    direct = {role for play in plays for role in [*play.roles, *play.validates]}
    imported = {path for play in plays for path in play.imports}
    where = f"molecule/{name} (scenario {name} in services.yaml)"
    assert direct == set(scenario.roles), (
        f"{where}: its playbooks apply the roles {sorted(direct)}; "
        f"services.yaml says {sorted(scenario.roles)}")
    expected = {manifest().services[s].playbook_path for s in scenario.services}
    assert imported == expected, (
        f"{where}: its playbooks import {sorted(imported)}; services.yaml's services give {sorted(expected)}")


@pytest.mark.parametrize("name", SCENARIOS)
def test_each_molecule_job_follows_exactly_the_files_of_its_scenario(name):
    scenario = manifest().scenarios[name]
    problems = _disagreements(scenario.job, pipeline("check")[scenario.job],
                              services.scenario_parts(ROOT, manifest(), scenario),
                              f"scenario {name} in services.yaml")
    assert not problems, "\n".join(problems)


def _scenario_roles(scenario: services.Scenario) -> set[str]:
    roles = set(scenario.roles)
    for name in scenario.services:
        roles |= set(manifest().services[name].roles)
    return roles


@pytest.mark.parametrize("name", SERVICES)
def test_each_service_names_the_scenarios_that_test_its_own_roles(name):
    """Its own roles: those no other service's playbook applies."""
    service = manifest().services[name]
    others = {r for s in manifest().services.values() if s.name != name for r in s.roles}
    own = set(service.roles) - others
    expected = [s.name for s in manifest().scenarios.values() if _scenario_roles(s) & own]
    assert sorted(service.scenarios) == sorted(expected), (
        f"service {name} in services.yaml: scenarios {list(service.scenarios)}; the scenarios that apply "
        f"its own roles {sorted(own)} are {expected}")


def test_every_role_is_deployed_and_tested_or_said_untested():
    on_disk = {p.name for p in (ROOT / "roles").iterdir() if (p / "tasks").is_dir()}
    deployed = {r for s in manifest().services.values()
                for r in services.role_closure(ROOT, tuple(s.roles))}
    assert sorted(on_disk - deployed) == [], "roles that no service of services.yaml applies"
    assert sorted(deployed - on_disk) == [], "services.yaml names roles that roles/ does not have"
    tested = {r for s in manifest().scenarios.values()
              for r in services.role_closure(ROOT, tuple(_scenario_roles(s)))}
    assert sorted(on_disk - tested) == sorted(manifest().roles_without_scenario), (
        "the roles no scenario converges are not services.yaml's roles_without_scenario")


def test_every_path_of_the_manifest_names_files_of_the_tree():
    """A follows or shared entry that matches nothing is stale (a file moved)."""
    m = manifest()
    entries = [*(("shared deploy", p) for p in m.shared_deploy),
               *(("shared molecule", p) for p in m.shared_molecule),
               *((f"service {s.name}", p) for s in m.services.values() for p in s.follows),
               *((f"scenario {s.name}", p) for s in m.scenarios.values() for p in s.follows)]
    stale = [f"{owner}: {path}" for owner, path in entries
             if not any(services.matches(path, f) for f in tree_files())]
    assert stale == [], "services.yaml paths that match no file"


# --- the shared regexes ------------------------------------------------------

@pytest.mark.parametrize(("parent", "conf", "shared", "pipeline_name"), [
    ("devinfra-deploy-playbook", "deploy-jobs.yaml", "shared_deploy", "deploy"),
    ("devinfra-molecule", "check-jobs.yaml", "shared_molecule", "check"),
])
def test_the_shared_regexes_are_written_once_and_match_the_manifests_shared_files(
        parent, conf, shared, pipeline_name):
    """The parent job's files are the shared regexes; its children use them by alias."""
    jobs, _ = zuul()
    regexes = jobs[parent].attrs["files"]
    text = (ZUUL_D / conf).read_text()
    for regex in regexes:
        assert text.count(regex) == 1, (
            f"zuul.d/{conf}: {regex} is written {text.count(regex)} times: write it once, in "
            f"{parent}'s files (with an anchor), and use the alias in each job")
    patterns = getattr(manifest(), shared)
    shared_files = [f for f in tree_files() if any(services.matches(p, f) for p in patterns)]
    for path in shared_files:
        assert plan.selects({"files": regexes}, [path], parent)[0], (
            f"{path} is a shared file of services.yaml ({shared}), but {parent}'s files do not match it")
    for name in pipeline(pipeline_name):
        if jobs[name].parent == parent:
            files = jobs[name].attrs.get("files") or []
            assert all(regex in files for regex in regexes), (
                f"zuul.d job {name}: its files do not end with {parent}'s shared ones (by alias)")


# --- Zuul's own YAML loader reads the aliases as devinfra.plan does ---------------

ZUUL_FILES = """
import json, sys
from zuul import configloader, model
out = {}
for path in sys.argv[1:]:
    context = model.SourceContext(None, "devinfra/devinfra", "devinfra/devinfra", "master", path)
    for item in configloader.safe_load_yaml(open(path).read(), context):
        if "job" in item:
            out[item["job"]["name"]] = [str(r) for r in item["job"].get("files", [])]
print(json.dumps(out))
"""


def test_zuuls_yaml_loader_reads_the_same_files_as_the_plan():
    python = os.environ.get("DEVINFRA_ZUUL_PYTHON")
    if not python:
        pytest.skip("set DEVINFRA_ZUUL_PYTHON to the python of a venv with zuul==14.3.0 to read zuul.d's "
                    "anchors and aliases with Zuul's own loader")
    confs = sorted(str(p) for p in ZUUL_D.glob("*.yaml"))
    run = subprocess.run([python, "-I", "-c", ZUUL_FILES, *confs], capture_output=True, text=True,
                         check=False, timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    theirs = json.loads(run.stdout)
    jobs, _ = zuul()
    ours = {name: list(job.attrs.get("files", [])) for name, job in jobs.items() if job.source == ZUUL_D}
    assert theirs == ours
