"""The gerrit_* modules (library/) as Ansible runs them, against the Gerrit contract double.

Every play is a real ansible-playbook run on localhost with the repository's
ansible.cfg and the json callback. Gerrit is tests/gerrit_double: a contract
double of the documented REST endpoints, not a Gerrit, so what passes here
is verified against that double only.
"""

import importlib.util
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from tests.gerrit_double import GerritDouble

ROOT = Path(__file__).resolve().parents[2]
ENV = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
           ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json", NO_PROXY="127.0.0.1", no_proxy="127.0.0.1",
           PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
MODULES = ("gerrit_project", "gerrit_group", "gerrit_access")


def load_module_utils():
    """plugins/module_utils/gerrit.py, imported the way a test can (Ansible ships it in each module)."""
    path = ROOT / "plugins/module_utils/gerrit.py"
    spec = importlib.util.spec_from_file_location("gerrit_module_utils", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gerrit_utils = load_module_utils()


@pytest.fixture
def gerrit():
    with GerritDouble(username="admin", password="secret") as double:
        for user in ("alice", "bob", "carol", "dave"):
            double.add_account(user)
        yield double


def play(gerrit, tmp_path, *tasks, args=()):
    """Run ``tasks`` ((name, module, module args, task keywords)) in one play; return {name: result}."""
    login = {"url": gerrit.url, "username": gerrit.username, "password": gerrit.password}
    playbook = [{"name": "Gerrit", "hosts": "localhost", "connection": "local", "gather_facts": False,
                 "vars": {"ansible_python_interpreter": sys.executable},
                 "tasks": [{"name": name, module: {**login, **module_args}, **keywords}
                           for name, module, module_args, keywords in tasks]}]
    path = tmp_path / "play.yaml"
    path.write_text(yaml.safe_dump(playbook, sort_keys=False))
    run = subprocess.run(["ansible-playbook", "-i", "localhost,", str(path), *args], cwd=ROOT, env=ENV,
                         capture_output=True, text=True, check=False, timeout=120)
    try:
        output = json.loads(run.stdout)
    except ValueError:
        pytest.fail(f"ansible-playbook printed no JSON (exit {run.returncode}):\n{run.stdout}\n{run.stderr}")
    results = {task["task"]["name"]: task["hosts"]["localhost"] for task in output["plays"][0]["tasks"]}
    assert len(results) == len(tasks), run.stdout + run.stderr  # the play stopped early
    return results


def task(title, module, /, check_mode=None, diff=None, ignore_errors=None, **module_args):
    keywords = {"check_mode": check_mode, "diff": diff, "ignore_errors": ignore_errors}
    return title, module, module_args, {key: value for key, value in keywords.items() if value is not None}


def failed(result, *fragments):
    assert result.get("failed"), result
    for fragment in fragments:
        assert fragment in result["msg"]
    return result["msg"]


# -- ansible-doc -----------------------------------------------------------------


def test_ansible_doc_renders_every_module():
    run = subprocess.run(["ansible-doc", *MODULES], cwd=ROOT, env=ENV, capture_output=True, text=True,
                         check=False, timeout=60)
    assert run.returncode == 0, run.stderr
    assert "WARNING" not in run.stderr and "ERROR" not in run.stderr, run.stderr
    for module in MODULES:
        assert f"MODULE {module} (" in run.stdout.replace("\x1b[1m", "").replace("\x1b[0m", "")
    docs = json.loads(subprocess.run(["ansible-doc", "--json", *MODULES], cwd=ROOT, env=ENV,
                                     capture_output=True, text=True, check=True, timeout=60).stdout)
    for module in MODULES:
        doc = docs[module]
        # The shared options come from plugins/doc_fragments/gerrit.py.
        assert {"url", "username", "password", "validate_certs", "timeout"} <= set(doc["doc"]["options"])
        assert doc["doc"]["attributes"]["check_mode"]["support"] == "full"
        assert f"{module}:" in doc["examples"]
        assert doc["return"]


# -- the client and the double, without Ansible --------------------------------


def test_double_answers_like_gerrit_and_requires_basic_auth(gerrit):
    request = urllib.request.Request(f"{gerrit.url}/a/projects/All-Projects")
    with pytest.raises(urllib.error.HTTPError) as anonymous:
        urllib.request.urlopen(request, timeout=10)
    assert anonymous.value.code == 401
    assert anonymous.value.headers["WWW-Authenticate"].startswith("Basic ")
    client = gerrit_utils.GerritClient(gerrit.url, "admin", "secret")
    assert client.call("GET", "projects/All-Projects", "read")["name"] == "All-Projects"
    with urllib.request.urlopen(urllib.request.Request(
            f"{gerrit.url}/a/projects/All-Projects",
            headers={"Authorization": "Basic YWRtaW46c2VjcmV0"}), timeout=10) as answer:
        assert answer.read().startswith(b")]}'\n")


def test_client_encodes_names_and_reports_errors_with_object_status_and_text(gerrit):
    client = gerrit_utils.GerritClient(gerrit.url, "admin", "secret", backoff=0.01)
    path = f"projects/{gerrit_utils.encode('infra/config')}"
    assert path == "projects/infra%2Fconfig"
    assert client.call("PUT", path, "create project 'infra/config'", {})["id"] == "infra%2Fconfig"
    with pytest.raises(gerrit_utils.GerritError) as conflict:
        client.call("PUT", path, "create project 'infra/config'", {})
    assert conflict.value.status == 409
    assert str(conflict.value) == \
        "Cannot create project 'infra/config': HTTP 409 Conflict: Project already exists"
    gerrit.fail("/a/projects/infra%2Fconfig", 403)
    forbidden = "HTTP 403 Forbidden: authorization failed: user 'admin'"
    with pytest.raises(gerrit_utils.GerritError, match=forbidden):
        client.call("GET", path, "read project 'infra/config'")


def test_client_retries_transient_failures_a_bounded_number_of_times(gerrit):
    client = gerrit_utils.GerritClient(gerrit.url, "admin", "secret", backoff=0.01)
    gerrit.fail("/a/projects/All-Projects", 502, times=1)
    gerrit.fail("/a/projects/All-Projects", 504, times=1)
    assert client.call("GET", "projects/All-Projects", "read project")["name"] == "All-Projects"
    assert [r.status for r in gerrit.requests] == [502, 504, 200]
    gerrit.fail("/a/projects/All-Users", 503, times=None)
    with pytest.raises(gerrit_utils.GerritError, match=r"HTTP 503 .* \(after 4 attempts\)"):
        client.call("GET", "projects/All-Users", "read project 'All-Users'")
    gerrit.fail("/a/projects/All-Projects/config", 500, times=None)
    with pytest.raises(gerrit_utils.GerritError, match="HTTP 500"):
        client.call("GET", "projects/All-Projects/config", "read config")
    assert gerrit.count("/a/projects/All-Projects/config") == 1  # a 500 is not retried
    gerrit.stop()
    with pytest.raises(gerrit_utils.GerritError, match=r"no answer from .*refused.*\(after 4 attempts\)"):
        client.call("GET", "projects/All-Projects", "read project 'All-Projects'")


def test_ids_are_form_encoded_by_gerrit_and_decoded_with_plus_as_space():
    from tests.gerrit_double.server import url_encode
    uuid = "ldap:cn=Infra Team+Ops,ou=groups~*"
    # Java's URLEncoder: a space is '+', a '+' is %2B, '*' stays and '~' is encoded.
    assert url_encode(uuid) == "ldap%3Acn%3DInfra+Team%2BOps%2Cou%3Dgroups%7E*"
    assert gerrit_utils.decode_id(url_encode(uuid)) == uuid
    assert gerrit_utils.decode_id("9999c971bb4ab872aab759d8c49833ee6b9ff320") == \
        "9999c971bb4ab872aab759d8c49833ee6b9ff320"


# -- gerrit_project ---------------------------------------------------------------


def test_project_check_mode_predicts_creation_and_writes_nothing(gerrit, tmp_path):
    results = play(gerrit, tmp_path, task("Create", "gerrit_project", name="infra/config",
                                          description="Zuul config", submit_type="REBASE_IF_NECESSARY"),
                   args=["--check", "--diff"])
    result = results["Create"]
    assert result["changed"] and result["created"]
    expected = {"name": "infra/config", "description": "Zuul config", "parent": "All-Projects",
                "state": "present", "submit_type": "REBASE_IF_NECESSARY"}
    assert result["project"] == expected
    assert result["diff"] == {"before": {}, "after": expected}
    assert "infra/config" not in gerrit.projects
    assert gerrit.writes() == []


def test_project_create_update_and_no_op(gerrit, tmp_path):
    gerrit.add_project("Infra-Projects")
    results = play(
        gerrit, tmp_path,
        task("Create", "gerrit_project", name="infra/config", description="Zuul config"),
        task("Create again", "gerrit_project", name="infra/config", description="Zuul config"),
        task("Update", "gerrit_project", diff=True, name="infra/config", description="Zuul's config",
             parent="Infra-Projects", state="read_only", submit_type="CHERRY_PICK"),
        task("Describe read-only", "gerrit_project", name="infra/config", description="Frozen",
             state="read_only"),
        task("Update again", "gerrit_project", name="infra/config", description="Frozen",
             parent="Infra-Projects", state="read_only", submit_type="CHERRY_PICK"),
        task("Reactivate in check mode", "gerrit_project", check_mode=True, name="infra/config",
             state="present"),
    )
    assert results["Create"]["changed"] and results["Create"]["created"]
    assert results["Create"]["project"] == {"name": "infra/config", "description": "Zuul config",
                                            "parent": "All-Projects", "state": "present"}
    # The name travels as one encoded path segment.
    creations = [r for r in gerrit.requests if (r.method, r.path) == ("PUT", "/a/projects/infra%2Fconfig")]
    assert [r.status for r in creations] == [201]
    assert not results["Create again"]["changed"]

    update = results["Update"]
    assert update["changed"] and not update["created"]
    assert update["diff"]["before"] == {"name": "infra/config", "description": "Zuul config",
                                        "parent": "All-Projects", "state": "present",
                                        "submit_type": "INHERIT"}
    assert update["diff"]["after"] == {"name": "infra/config", "description": "Zuul's config",
                                       "parent": "Infra-Projects", "state": "read_only",
                                       "submit_type": "CHERRY_PICK"}
    # A read-only project refuses description writes: the module sets it with the config.
    assert results["Describe read-only"]["changed"]
    assert not results["Update again"]["changed"]
    assert results["Reactivate in check mode"]["changed"]
    assert results["Reactivate in check mode"]["project"]["state"] == "present"
    stored = gerrit.projects["infra/config"]
    assert (stored["description"], stored["parent"], stored["state"], stored["submit_type"]) == \
        ("Frozen", "Infra-Projects", "READ_ONLY", "CHERRY_PICK")


def test_project_errors_name_the_project_and_transient_failures_are_retried(gerrit, tmp_path):
    gerrit.fail("/a/projects/broken", 500, times=None)
    gerrit.fail("/a/projects/flaky", 503, times=1)
    results = play(
        gerrit, tmp_path,
        task("Invalid name", "gerrit_project", ignore_errors=True, name="infra/config.git"),
        task("Absolute name", "gerrit_project", ignore_errors=True, name="/infra config"),
        task("Wrong password", "gerrit_project", ignore_errors=True, name="infra/config", password="wrong"),
        task("Server error", "gerrit_project", ignore_errors=True, name="broken"),
        task("Transient error", "gerrit_project", name="flaky", description="Created on the second try"),
    )
    failed(results["Invalid name"], "invalid project name 'infra/config.git'", "must not end in '.git'")
    failed(results["Absolute name"], "must not start or end with '/'", "must not contain whitespace")
    assert not any("config.git" in r.path or "infra%20config" in r.path for r in gerrit.requests)
    failed(results["Wrong password"], "Cannot read project 'infra/config': HTTP 401",
           "authentication failed for user 'admin'")
    assert results["Wrong password"]["status"] == 401
    failed(results["Server error"], "Cannot read project 'broken': HTTP 500 Internal Server Error",
           "Injected fault")
    assert results["Transient error"]["changed"]
    assert gerrit.projects["flaky"]["description"] == "Created on the second try"
    assert [r.status for r in gerrit.requests if r.path == "/a/projects/flaky"][:2] == [503, 404]


# -- gerrit_group -------------------------------------------------------------------


def test_group_check_mode_predicts_creation_and_writes_nothing(gerrit, tmp_path):
    results = play(gerrit, tmp_path,
                   task("Create", "gerrit_group", name="infra-core", description="Core",
                        owner="Administrators", members=["alice", "bob@example.org"]),
                   task("Create owned by a new group", "gerrit_group", name="infra-bots", owner="infra-core"),
                   args=["--check", "--diff"])
    result = results["Create"]
    expected = {"name": "infra-core", "id": None, "description": "Core", "owner": "Administrators",
                "visible_to_all": False, "members": ["alice", "bob@example.org"]}
    assert result["changed"] and result["created"]
    assert result["group"] == expected
    assert result["diff"] == {"before": {}, "after": expected}
    # The owner does not exist yet: an earlier task would create it.
    owned = results["Create owned by a new group"]
    assert owned["changed"] and owned["group"]["owner"] == "infra-core"
    assert "Owner group 'infra-core' does not exist" in owned["warnings"][0]
    assert gerrit.group("infra-core") is None
    assert gerrit.writes() == []


def test_group_create_update_and_no_op(gerrit, tmp_path):
    ids = {a["username"]: account_id for account_id, a in gerrit.accounts.items()}
    results = play(
        gerrit, tmp_path,
        task("Create", "gerrit_group", name="infra-core", description="Core",
             members=["alice", "bob@example.org"]),
        task("Create again", "gerrit_group", name="infra-core", description="Core",
             members=["bob@example.org", "alice"]),
        task("Update", "gerrit_group", diff=True, name="infra-core", description="Core reviewers",
             owner="Administrators", visible_to_all=True, members=["alice", "carol"]),
        task("Append", "gerrit_group", name="infra-core", members=["dave"], members_mode="append"),
        task("Update in check mode", "gerrit_group", check_mode=True, name="infra-core", members=["alice"]),
        task("Create empty", "gerrit_group", name="nobody", members=[]),
        task("Create empty again", "gerrit_group", name="nobody", members=[]),
    )
    create = results["Create"]
    assert create["changed"] and create["created"]
    assert create["group"]["members"] == ["alice", "bob@example.org"]
    assert create["group"]["owner"] == "infra-core"  # self-owned
    assert not results["Create again"]["changed"]

    update = results["Update"]
    assert update["changed"]
    # Members the task lists show as it names them, the others by username.
    assert update["diff"]["before"] == {**create["group"], "members": ["alice", "bob"]}
    assert update["diff"]["after"] == {**create["group"], "description": "Core reviewers",
                                       "owner": "Administrators", "visible_to_all": True,
                                       "members": ["alice", "carol"]}
    assert results["Append"]["changed"]
    assert results["Append"]["group"]["members"] == ["alice", "carol", "dave"]
    assert results["Update in check mode"]["group"]["members"] == ["alice"]
    group = gerrit.group("infra-core")
    assert group["members"] == sorted([ids["alice"], ids["carol"], ids["dave"]])
    assert (group["description"], group["visible_to_all"]) == ("Core reviewers", True)
    assert group["owner"] == gerrit.group("Administrators")["uuid"]
    # Gerrit makes the creator a member of a self-owned group created without members: exact removes it.
    assert results["Create empty"]["group"]["members"] == []
    assert gerrit.group("nobody")["members"] == []
    assert not results["Create empty again"]["changed"]


def test_group_errors_name_the_group_and_transient_failures_are_retried(gerrit, tmp_path):
    gerrit.fail("/a/groups/broken", 500, times=None)
    gerrit.fail("/a/groups/flaky", 503, times=1)
    results = play(
        gerrit, tmp_path,
        task("Invalid name", "gerrit_group", ignore_errors=True, name=" padded"),
        task("Wrong password", "gerrit_group", ignore_errors=True, name="infra-core", password="wrong"),
        task("Server error", "gerrit_group", ignore_errors=True, name="broken"),
        task("Unknown member", "gerrit_group", ignore_errors=True, name="infra-core", members=["nobody"]),
        task("Unknown owner", "gerrit_group", ignore_errors=True, name="infra-core", owner="Nobody"),
        task("Transient error", "gerrit_group", name="flaky", members=["alice"]),
    )
    failed(results["Invalid name"], "invalid group name ' padded'", "whitespace")
    failed(results["Wrong password"], "HTTP 401 Unauthorized: authentication failed for user 'admin'")
    failed(results["Server error"], "Cannot read group 'broken': HTTP 500 Internal Server Error")
    failed(results["Unknown member"], "Cannot create group 'infra-core': HTTP 422",
           "Account 'nobody' not found")
    failed(results["Unknown owner"], "Cannot read owner group 'Nobody' of group 'infra-core': HTTP 404")
    assert results["Transient error"]["changed"]
    assert gerrit.group("flaky")["members"] == [next(i for i, a in gerrit.accounts.items()
                                                    if a["username"] == "alice")]


def test_group_members_named_by_secondary_email_or_full_name_are_kept_not_re_added(gerrit, tmp_path):
    erin = gerrit.add_account("erin", name="Erin Example", secondary_emails=["erin@old.example.org"])
    frank = gerrit.add_account("frank", name="Frank Fuller")
    alice = next(i for i, a in gerrit.accounts.items() if a["username"] == "alice")
    members = ["erin@old.example.org", "Frank Fuller", "Alice <alice@example.org>"]
    results = play(
        gerrit, tmp_path,
        task("Create", "gerrit_group", name="infra-core", members=members),
        task("Create again", "gerrit_group", name="infra-core", members=members),
        task("Again in check mode", "gerrit_group", check_mode=True, name="infra-core", members=members),
        task("Append by other names", "gerrit_group", name="infra-core", members_mode="append",
             members=["erin", str(frank)]),
    )
    assert results["Create"]["changed"] and results["Create"]["created"]
    assert results["Create"]["group"]["members"] == sorted(members)
    for title in ("Create again", "Again in check mode", "Append by other names"):
        assert not results[title]["changed"], title
    assert results["Create again"]["group"]["members"] == sorted(members)
    assert gerrit.group("infra-core")["members"] == sorted([alice, erin, frank])
    # Members are compared by account ID: nothing was added or removed after the creation.
    assert [r.path.rsplit("/", 1)[-1] for r in gerrit.writes()] == ["infra-core"]


def test_group_names_match_whatever_their_case_and_system_groups_are_refused(gerrit, tmp_path):
    gerrit.add_group("infra-core", description="Core")
    results = play(
        gerrit, tmp_path,
        task("Other case", "gerrit_group", name="Infra-Core", description="Core reviewers"),
        task("Other case again", "gerrit_group", name="INFRA-CORE", description="Core reviewers"),
        task("Owner in other case", "gerrit_group", name="infra-core", owner="administrators"),
        task("System group", "gerrit_group", ignore_errors=True, name="Registered Users", description="All"),
        task("System group in check mode", "gerrit_group", check_mode=True, ignore_errors=True,
             name="registered users", members=["alice"]),
    )
    other_case = results["Other case"]
    assert other_case["changed"] and not other_case["created"]
    assert other_case["group"]["name"] == "infra-core"
    assert "Group 'Infra-Core' exists as 'infra-core'" in other_case["warnings"][0]
    assert not results["Other case again"]["changed"]
    assert not any(r.path == "/a/groups/Infra-Core" and r.method == "PUT" for r in gerrit.requests)
    assert gerrit.group("infra-core")["description"] == "Core reviewers"
    assert results["Owner in other case"]["group"]["owner"] == "Administrators"
    assert gerrit.group("infra-core")["owner"] == gerrit.group("Administrators")["uuid"]
    for title in ("System group", "System group in check mode"):
        failed(results[title], "is not an internal group", "gerrit_group manages internal groups only")
    assert "Registered Users" in results["System group"]["msg"]
    assert [r for r in gerrit.writes() if "Registered" in r.path or "registered" in r.path] == []


def test_group_owned_by_an_external_or_system_group_is_created_then_given_its_owner(gerrit, tmp_path):
    ldap = gerrit.add_external_group("ldap:cn=Infra Team,ou=groups", "ldap/Infra Team")
    results = play(
        gerrit, tmp_path,
        task("Check mode", "gerrit_group", check_mode=True, name="infra-core", owner="ldap/Infra Team",
             members=["alice"]),
        task("Create", "gerrit_group", name="infra-core", owner="ldap/Infra Team", members=["alice"]),
        task("Create again", "gerrit_group", name="infra-core", owner="ldap/Infra Team", members=["alice"]),
        task("By UUID", "gerrit_group", name="infra-core", owner=ldap),
        task("Owned by a system group", "gerrit_group", name="reviewers", owner="Registered Users"),
    )
    assert results["Check mode"]["changed"] and results["Check mode"]["group"]["owner"] == "ldap/Infra Team"
    create = results["Create"]
    assert create["changed"] and create["created"] and create["group"]["owner"] == "ldap/Infra Team"
    assert not results["Create again"]["changed"]
    assert not results["By UUID"]["changed"]
    assert gerrit.group("infra-core")["owner"] == ldap
    # Gerrit's CreateGroup takes an internal owner only (422 otherwise): the owner is set after creation.
    creation = next(r for r in gerrit.writes() if r.path == "/a/groups/infra-core")
    assert "owner_id" not in creation.body and creation.status == 201
    assert results["Owned by a system group"]["group"]["owner"] == "Registered Users"
    assert gerrit.group("reviewers")["owner"] == "global:Registered-Users"


def test_a_create_retried_after_a_502_is_a_success_when_the_object_matches(gerrit, tmp_path):
    gerrit.fail("/a/projects/infra%2Fconfig", 502, method="PUT", carried_out=True)
    gerrit.fail("/a/groups/infra-core", 502, method="PUT", carried_out=True)
    gerrit.fail("/a/projects/other", 502, method="PUT",
                effect=lambda: gerrit.add_project("other", description="Someone else's"))
    gerrit.fail("/a/groups/others", 502, method="PUT",
                effect=lambda: gerrit.add_group("others", description="Someone else's"))
    gerrit.fail("/a/projects/conflict", 409, method="PUT")
    results = play(
        gerrit, tmp_path,
        task("Project", "gerrit_project", name="infra/config", description="Zuul config", state="read_only"),
        task("Group", "gerrit_group", name="infra-core", description="Core", members=["alice", "bob"]),
        task("Project created by another client", "gerrit_project", ignore_errors=True, name="other",
             description="Mine"),
        task("Group created by another client", "gerrit_group", ignore_errors=True, name="others",
             description="Mine"),
        task("Conflict without a retry", "gerrit_project", ignore_errors=True, name="conflict"),
    )
    project = results["Project"]
    assert project["changed"] and project["created"] and project["project"]["state"] == "read_only"
    creations = [r for r in gerrit.requests if (r.method, r.path) == ("PUT", "/a/projects/infra%2Fconfig")]
    assert [r.status for r in creations] == [502, 409]
    assert gerrit.projects["infra/config"]["state"] == "READ_ONLY"
    group = results["Group"]
    assert group["changed"] and group["created"] and group["group"]["members"] == ["alice", "bob"]
    assert [r.status for r in gerrit.requests if (r.method, r.path) == ("PUT", "/a/groups/infra-core")] \
        == [502, 409]
    failed(results["Project created by another client"], "Cannot create project 'other': HTTP 409",
           "(after 2 attempts)", "differs from the task: description")
    failed(results["Group created by another client"], "Cannot create group 'others': HTTP 409",
           "differs from the task: description")
    assert gerrit.projects["other"]["description"] == "Someone else's"
    failed(results["Conflict without a retry"], "Cannot create project 'conflict': HTTP 409")


# -- rights ---------------------------------------------------------------------------


def test_errors_name_the_right_a_non_administrator_lacks(gerrit, tmp_path):
    erin = gerrit.add_account("erin", http_password="erin-secret")
    team = gerrit.add_group("erin-team", members=[erin])  # self-owned: its members own it
    gerrit.add_group("infra-core")
    gerrit.add_project("erin/project")
    gerrit.grant("erin/project", "refs/*", "owner", team)
    as_erin = {"username": "erin", "password": "erin-secret"}
    read = {"refs/heads/*": {"permissions": {"read": {"rules": {"erin-team": {}}}}}}
    results = play(
        gerrit, tmp_path,
        task("Create a project", "gerrit_project", ignore_errors=True, name="new/project", **as_erin),
        task("Create a group", "gerrit_group", ignore_errors=True, name="new-group", **as_erin),
        task("Describe another's project", "gerrit_project", ignore_errors=True, name="All-Users",
             description="Mine", **as_erin),
        task("Describe her project", "gerrit_project", name="erin/project", description="Mine", **as_erin),
        task("Reparent her project", "gerrit_project", ignore_errors=True, name="erin/project",
             parent="All-Users", **as_erin),
        task("Change another's group", "gerrit_group", ignore_errors=True, name="infra-core",
             description="Mine", **as_erin),
        task("Change members of another's group", "gerrit_group", ignore_errors=True, name="infra-core",
             members=["erin"], **as_erin),
        task("Change her group", "gerrit_group", name="erin-team", description="Mine",
             members=["erin", "alice"], **as_erin),
        task("Access of another's project", "gerrit_access", ignore_errors=True, project="All-Users",
             sections=read, **as_erin),
        task("Access of her project", "gerrit_access", project="erin/project", sections=read, **as_erin),
        task("Global capabilities", "gerrit_access", ignore_errors=True, project="All-Projects",
             sections={"GLOBAL_CAPABILITIES": {"permissions": {
                 "administrateServer": {"rules": {"Administrators": {}}},
                 "createProject": {"rules": {"erin-team": {}}}}}},
             **as_erin),
    )
    forbidden = "HTTP 403 Forbidden: authorization failed: user 'erin' is not permitted to do this"
    failed(results["Create a project"], "Cannot create project 'new/project'", forbidden,
           "needs the Create Project capability")
    failed(results["Create a group"], "Cannot create group 'new-group'", forbidden,
           "needs the Create Group capability")
    failed(results["Describe another's project"], forbidden, "needs ownership of project 'All-Users'")
    assert results["Describe her project"]["changed"]
    failed(results["Reparent her project"], "Cannot set the parent of project 'erin/project'", forbidden,
           "needs the Administrate Server capability")
    failed(results["Change another's group"], forbidden, "needs ownership of group 'infra-core'")
    failed(results["Change members of another's group"], "Cannot add members to group 'infra-core'",
           "needs ownership of group 'infra-core'")
    assert results["Change her group"]["changed"]
    assert gerrit.group("erin-team")["description"] == "Mine"
    failed(results["Access of another's project"], forbidden, "needs ownership of project 'All-Users'")
    assert results["Access of her project"]["changed"]
    failed(results["Global capabilities"], forbidden, "the Administrate Server capability")
    assert "createProject" not in gerrit.projects["All-Projects"]["access"]["GLOBAL_CAPABILITIES"]


# -- gerrit_access ------------------------------------------------------------------

CORE_RIGHTS = {
    "refs/heads/*": {"permissions": {
        "label-Code-Review": {"rules": {"infra-core": {"min": -2, "max": 2},
                                        "Registered Users": {"min": -1, "max": 1}}},
        "submit": {"rules": {"infra-core": None}}}},
    "refs/meta/config": {"permissions": {"read": {"exclusive": True, "rules": {"infra-core": {}}}}},
}


@pytest.fixture
def infra_config(gerrit):
    """infra/config with a read rule on refs/heads/* and a tag rule on refs/tags/*."""
    core = gerrit.add_group("infra-core")
    gerrit.add_project("infra/config", access={
        "refs/heads/*": {"read": {"exclusive": False,
                                  "rules": {"global:Registered-Users": {"action": "ALLOW"}}}},
        "refs/tags/*": {"createTag": {"exclusive": False, "rules": {core: {"action": "ALLOW"}}}}})
    return core


def stored_heads(core):
    return {"label-Code-Review": {"exclusive": False, "rules": {
                core: {"action": "ALLOW", "force": False, "min": -2, "max": 2},
                "global:Registered-Users": {"action": "ALLOW", "force": False, "min": -1, "max": 1}}},
            "submit": {"exclusive": False, "rules": {core: {"action": "ALLOW", "force": False, "min": 0,
                                                            "max": 0}}}}


def test_access_check_mode_predicts_the_sections_and_writes_nothing(gerrit, infra_config, tmp_path):
    before = json.dumps(gerrit.projects["infra/config"]["access"], sort_keys=True)
    results = play(gerrit, tmp_path,
                   task("Set", "gerrit_access", project="infra/config", sections=CORE_RIGHTS),
                   task("Set on a new project", "gerrit_access", project="new/project",
                        sections={"refs/*": {"permissions": {"read": {"rules": {"new-group": None}}}}}),
                   args=["--check", "--diff"])
    result = results["Set"]
    assert result["changed"]
    assert result["diff"]["before"] == {"refs/heads/*": {"permissions": {"read": {
        "exclusive": False, "rules": {"Registered Users": {"action": "ALLOW", "force": False}}}}}}
    assert result["diff"]["after"] == result["sections"]
    assert result["sections"]["refs/heads/*"]["permissions"]["label-Code-Review"]["rules"] == {
        "infra-core": {"action": "ALLOW", "force": False, "min": -2, "max": 2},
        "Registered Users": {"action": "ALLOW", "force": False, "min": -1, "max": 1}}
    assert result["sections"]["refs/meta/config"]["permissions"]["read"]["exclusive"] is True
    # Neither the project nor the group exists yet: earlier tasks would create them.
    new = results["Set on a new project"]
    assert new["changed"]
    assert new["diff"] == {"before": {}, "after": {"refs/*": {"permissions": {"read": {
        "exclusive": False, "rules": {"new-group": {"action": "ALLOW", "force": False}}}}}}}
    assert [w.split(";")[0] for w in new["warnings"]] == ["Project 'new/project' does not exist",
                                                          "Group 'new-group' does not exist"]
    assert json.dumps(gerrit.projects["infra/config"]["access"], sort_keys=True) == before
    assert gerrit.writes() == []


def test_access_set_no_op_purge_and_check_mode(gerrit, infra_config, tmp_path):
    core = infra_config
    results = play(
        gerrit, tmp_path,
        task("Set", "gerrit_access", project="infra/config", sections=CORE_RIGHTS, message="Core rights"),
        task("Set again", "gerrit_access", project="infra/config", sections=CORE_RIGHTS),
        task("Set by UUID", "gerrit_access", project="infra/config",
             sections={"refs/meta/config": {"permissions": {"read": {"exclusive": True,
                                                                     "rules": {core: {}}}}}}),
        task("Purge", "gerrit_access", diff=True, project="infra/config", sections=CORE_RIGHTS,
             purge_other_sections=True),
        task("Drop submit in check mode", "gerrit_access", check_mode=True, project="infra/config",
             sections={"refs/heads/*": {"permissions": {
                 "label-Code-Review": CORE_RIGHTS["refs/heads/*"]["permissions"]["label-Code-Review"]}}}),
    )
    assert results["Set"]["changed"]
    posts = [r for r in gerrit.writes() if r.path == "/a/projects/infra%2Fconfig/access"]
    assert posts[0].body["remove"] == {"refs/heads/*": {"permissions": {}}}
    assert posts[0].body["message"] == "Core rights"
    assert not results["Set again"]["changed"]
    assert not results["Set by UUID"]["changed"]
    purge = results["Purge"]
    assert purge["changed"]
    assert set(purge["diff"]["before"]) == {"refs/heads/*", "refs/meta/config", "refs/tags/*"}
    assert set(purge["diff"]["after"]) == {"refs/heads/*", "refs/meta/config"}
    assert len(posts) == 2  # the check-mode task posted nothing
    assert set(results["Drop submit in check mode"]["sections"]["refs/heads/*"]["permissions"]) == \
        {"label-Code-Review"}
    access = gerrit.projects["infra/config"]["access"]
    assert set(access) == {"refs/heads/*", "refs/meta/config"}
    assert access["refs/heads/*"] == stored_heads(core)
    assert access["refs/meta/config"]["read"]["exclusive"] is True


def test_access_errors_name_the_project_and_transient_failures_are_retried(gerrit, infra_config, tmp_path):
    gerrit.add_project("broken")
    gerrit.add_project("flaky")
    gerrit.fail("/a/projects/broken/access", 500, method="POST")
    gerrit.fail("/a/projects/flaky/access", 503, times=1)
    results = play(
        gerrit, tmp_path,
        task("Invalid project", "gerrit_access", ignore_errors=True, project="infra//config", sections={}),
        task("Invalid section", "gerrit_access", ignore_errors=True, project="infra/config",
             sections={"heads/*": {"permissions": {"read": {"rules": {"infra-core": {}}}}}}),
        task("Invalid rule", "gerrit_access", ignore_errors=True, project="infra/config",
             sections={"refs/*": {"permissions": {"read": {"rules": {"infra-core": {"action": "PERMIT"}}}}}}),
        task("Unknown group", "gerrit_access", ignore_errors=True, project="infra/config",
             sections={"refs/*": {"permissions": {"read": {"rules": {"Nobody": {}}}}}}),
        task("Wrong password", "gerrit_access", ignore_errors=True, project="infra/config", sections={},
             password="wrong"),
        task("Server error", "gerrit_access", ignore_errors=True, project="broken", sections=CORE_RIGHTS),
        task("Transient error", "gerrit_access", project="flaky", sections=CORE_RIGHTS),
    )
    failed(results["Invalid project"], "invalid project name 'infra//config'")
    failed(results["Invalid section"], "sections['heads/*']", "ref pattern starting with refs/")
    failed(results["Invalid rule"], "sections['refs/*'].permissions.read.rules['infra-core'].action",
           "ALLOW, DENY, BLOCK")
    failed(results["Unknown group"], "Cannot resolve group 'Nobody' for the access rights of project "
                                     "'infra/config': HTTP 404 Not Found: Not found: Nobody")
    failed(results["Wrong password"], "Cannot read the access rights of project 'infra/config': HTTP 401")
    failed(results["Server error"], "Cannot set the access rights of project 'broken': "
                                    "HTTP 500 Internal Server Error: Injected fault")
    assert gerrit.projects["broken"]["access"] == {}
    assert results["Transient error"]["changed"]
    assert gerrit.projects["flaky"]["access"]["refs/heads/*"] == stored_heads(infra_config)
    assert [r.status for r in gerrit.requests if r.path == "/a/projects/flaky/access"] == [503, 200, 200]


def test_access_rules_of_an_external_group_whose_uuid_has_a_space(gerrit, infra_config, tmp_path):
    ldap = gerrit.add_external_group("ldap:cn=Infra Team,ou=groups", "ldap/Infra Team")
    by_uuid = {"refs/heads/*": {"permissions": {"read": {"rules": {ldap: {}}}}}}
    by_name = {"refs/heads/*": {"permissions": {"read": {"rules": {"ldap/Infra Team": {}}}}}}
    results = play(gerrit, tmp_path,
                   task("Set", "gerrit_access", project="infra/config", sections=by_uuid),
                   task("Set again", "gerrit_access", project="infra/config", sections=by_uuid),
                   task("Set by name", "gerrit_access", project="infra/config", sections=by_name))
    assert results["Set"]["changed"]
    assert results["Set"]["sections"]["refs/heads/*"]["permissions"]["read"]["rules"] == {
        "ldap/Infra Team": {"action": "ALLOW", "force": False}}
    assert not results["Set again"]["changed"] and not results["Set by name"]["changed"]
    assert gerrit.projects["infra/config"]["access"]["refs/heads/*"]["read"]["rules"] == {
        ldap: {"action": "ALLOW", "force": False, "min": 0, "max": 0}}


def test_access_refuses_what_gerrit_would_drop_naming_the_permission(gerrit, infra_config, tmp_path):
    # A GLOBAL_CAPABILITIES section replaces the one of All-Projects: it keeps the administrators'.
    admins = {"administrateServer": {"rules": {"Administrators": {}}}}

    def section(ref, name, **permission):
        return {ref: {"permissions": {**(admins if ref == "GLOBAL_CAPABILITIES" else {}),
                                      name: {"rules": {"infra-core": {}}, **permission}}}}
    ranged_submit = {"refs/heads/*": {"permissions": {"submit": {"rules": {
        "infra-core": {"min": -1, "max": 1}}}}}}
    query_limit = {"GLOBAL_CAPABILITIES": {"permissions": {**admins, "queryLimit": {"rules": {
        "infra-core": {"min": 0, "max": 1000}}}}}}
    results = play(
        gerrit, tmp_path,
        task("Range on submit", "gerrit_access", ignore_errors=True, project="infra/config",
             sections=ranged_submit),
        task("Exclusive capability", "gerrit_access", ignore_errors=True, project="All-Projects",
             sections=section("GLOBAL_CAPABILITIES", "createProject", exclusive=True)),
        task("Exclusive owner", "gerrit_access", ignore_errors=True, project="infra/config",
             sections=section("refs/*", "owner", exclusive=True)),
        task("Range on a ranged capability", "gerrit_access", project="All-Projects", sections=query_limit),
        task("Range on a ranged capability again", "gerrit_access", project="All-Projects",
             sections=query_limit),
    )
    failed(results["Range on submit"], "sections['refs/heads/*'].permissions.submit.rules['infra-core']",
           "min and max", "submit")
    failed(results["Exclusive capability"], "sections['GLOBAL_CAPABILITIES'].permissions.createProject",
           "exclusive")
    failed(results["Exclusive owner"], "sections['refs/*'].permissions.owner", "exclusive")
    assert results["Range on a ranged capability"]["changed"]
    assert not results["Range on a ranged capability again"]["changed"]
    assert gerrit.count("/a/projects/infra%2Fconfig/access", method="POST") == 0
    assert gerrit.count("/a/projects/All-Projects/access", method="POST") == 1
