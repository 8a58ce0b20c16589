"""GerritModule and ensure() (plugins/module_utils/gerrit.py), the frame the gerrit_* modules run in.

ensure() is tested with callbacks that record what they are asked to do; GerritModule and the three
modules run in this process (ansible.module_utils.testing gives AnsibleModule its arguments, and exit_json
and fail_json raise instead of exiting), the modules against tests/gerrit_double.
tests/unit/test_gerrit_modules.py runs the same modules the way Ansible does.
"""

import ast
import importlib.util
import sys
from pathlib import Path

import pytest
from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.testing import patch_module_args

from tests.gerrit_double import GerritDouble

ROOT = Path(__file__).resolve().parents[2]
NAMES = ("gerrit_project", "gerrit_group", "gerrit_access")


def load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# The modules import ansible.module_utils.gerrit (Ansible ships it in each module): it is made importable
# under that name only while they are loaded.
gerrit = load("ansible.module_utils.gerrit", ROOT / "plugins/module_utils/gerrit.py")
_saved = sys.modules.get("ansible.module_utils.gerrit")
sys.modules["ansible.module_utils.gerrit"] = gerrit
try:
    MODULES = {name: load(f"test_base_{name}", ROOT / f"library/{name}.py") for name in NAMES}
finally:
    if _saved is None:
        del sys.modules["ansible.module_utils.gerrit"]
    else:
        sys.modules["ansible.module_utils.gerrit"] = _saved


# -- ensure() ------------------------------------------------------------------------


class Recorder:
    """ensure()'s callbacks over one object, held as a dict; ``calls`` logs what was written."""

    def __init__(self, stored=None, wanted=None):
        self.stored, self.wanted, self.calls = stored, wanted or {}, []

    def read(self):
        return None if self.stored is None else dict(self.stored)

    def plan(self, current):
        after = {**(current or {"new": True}), **self.wanted}
        return after, {k: v for k, v in self.wanted.items() if (current or {}).get(k) != v}

    def create(self):
        self.calls.append("create")
        self.stored = {"new": True}
        return self.read()

    def update(self, current, changes):
        self.calls.append(("update", changes))
        self.stored.update(changes)
        return self.read()

    def delete(self, current):
        self.calls.append("delete")
        self.stored = None

    def ensure(self, **kwargs):
        return gerrit.ensure(self.read, self.plan, self.create, self.update, self.delete, **kwargs)


def test_check_mode_writes_nothing_and_predicts_the_after_state():
    new = Recorder(wanted={"description": "x"})
    assert new.ensure(check_mode=True) == (None, {"new": True, "description": "x"}, True, True)
    old = Recorder({"description": "old", "parent": "p"}, {"description": "x"})
    assert old.ensure(check_mode=True) == ({"description": "old", "parent": "p"},
                                           {"description": "x", "parent": "p"}, True, False)
    gone = Recorder({"description": "old"})
    assert gone.ensure(present=False, check_mode=True) == ({"description": "old"}, None, True, False)
    assert new.calls == old.calls == gone.calls == []
    assert gone.stored == {"description": "old"}


def test_a_new_object_is_created_then_planned_and_updated_like_an_existing_one():
    new = Recorder(wanted={"description": "x"})
    outcome = new.ensure()
    assert outcome == (None, {"new": True, "description": "x"}, True, True)
    assert new.calls == ["create", ("update", {"description": "x"})]
    same = {"new": True, "description": "x"}
    assert new.ensure() == (same, same, False, False)
    assert len(new.calls) == 2  # nothing to write the second time


def test_before_is_what_results_show_of_what_read_returns():
    stored = Recorder({"id": 7, "description": "old"})
    outcome = gerrit.ensure(stored.read, lambda current: ({"description": "x"}, {"description": "x"}),
                            update=lambda current, changes: {"description": "x"}, create=stored.create,
                            show=lambda obj: {"description": obj["description"]})
    assert outcome == ({"description": "old"}, {"description": "x"}, True, False)


def test_absent_when_missing_is_a_no_op_and_absent_deletes():
    for check_mode in (False, True):
        missing = Recorder()
        assert missing.ensure(present=False, check_mode=check_mode) == (None, None, False, False)
        assert missing.calls == []
    present = Recorder({"description": "old"})
    assert present.ensure(present=False) == ({"description": "old"}, None, True, False)
    assert present.calls == ["delete"] and present.stored is None


def test_without_create_nothing_is_said_of_creation_and_a_missing_object_is_an_error():
    existing = Recorder({"description": "old"}, {"description": "old"})
    outcome = gerrit.ensure(existing.read, existing.plan, update=existing.update)
    assert outcome == ({"description": "old"}, {"description": "old"}, False, None)
    missing = Recorder(wanted={"description": "x"})
    with pytest.raises(gerrit.TaskError, match="cannot create it"):
        gerrit.ensure(missing.read, missing.plan, update=missing.update, check_mode=True)


# -- GerritModule ----------------------------------------------------------------------


class Exited(Exception):
    def __init__(self, result, failed=False):
        super().__init__(result)
        self.result, self.failed = result, failed


@pytest.fixture
def run(monkeypatch):
    """run(main, check_mode=False, diff=False, **module args) -> the result; raises Exited on failure."""
    def exit_json(self, **result):
        raise Exited(result)

    def fail_json(self, msg, **result):
        raise Exited({"msg": msg, **result, "failed": True}, failed=True)

    monkeypatch.setattr(AnsibleModule, "exit_json", exit_json)
    monkeypatch.setattr(AnsibleModule, "fail_json", fail_json)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    monkeypatch.setenv("no_proxy", "127.0.0.1")

    def run(main, check_mode=False, diff=False, **args):
        args = {"url": "http://127.0.0.1:9", "username": "admin", "password": "secret", **args,
                "_ansible_check_mode": check_mode, "_ansible_diff": diff}
        with patch_module_args(args), pytest.raises(Exited) as exited:
            main()
        return exited.value.result
    return run


class Widget(gerrit.GerritModule):
    """A module over one object in memory, to test the frame alone."""

    argument_spec = dict(name=dict(type="str", required=True), size=dict(type="int"),
                         state=dict(type="str", choices=["present", "absent"], default="present"))
    result_key = "widget"
    name_checks = {"name": "widget name"}
    name_error = staticmethod(gerrit.project_name_error)
    stored = {}
    writes = []
    fault = None

    def read(self):
        if self.fault:
            raise self.fault
        return self.stored.get(self.params["name"])

    def plan(self, current):
        after = {**(current or {"name": self.params["name"], "size": 1}), "size": self.params["size"]}
        return after, after != current

    def create(self):
        self.writes.append("create")
        self.stored[self.params["name"]] = {"name": self.params["name"], "size": 1}
        return self.stored[self.params["name"]]

    def update(self, current, changes):
        self.writes.append("update")
        self.stored[self.params["name"]]["size"] = self.params["size"]
        return dict(self.stored[self.params["name"]])

    def delete(self, current):
        self.writes.append("delete")
        del self.stored[self.params["name"]]


@pytest.fixture
def widgets(monkeypatch):
    monkeypatch.setattr(Widget, "stored", {})
    monkeypatch.setattr(Widget, "writes", [])
    return Widget


def test_the_module_exits_with_changed_created_its_result_and_diff(run, widgets):
    result = run(widgets.main, check_mode=True, diff=True, name="w", size=2)
    assert result == {"changed": True, "created": True, "widget": {"name": "w", "size": 2},
                      "diff": {"before": {}, "after": {"name": "w", "size": 2}}}
    assert widgets.writes == [] and widgets.stored == {}
    assert run(widgets.main, name="w", size=2) == {"changed": True, "created": True,
                                                    "widget": {"name": "w", "size": 2}}
    assert widgets.writes == ["create", "update"]
    assert run(widgets.main, diff=True, name="w", size=2) == {
        "changed": False, "created": False, "widget": {"name": "w", "size": 2},
        "diff": {"before": {"name": "w", "size": 2}, "after": {"name": "w", "size": 2}}}
    assert run(widgets.main, diff=True, name="w", state="absent") == {
        "changed": True, "created": False, "widget": None,
        "diff": {"before": {"name": "w", "size": 2}, "after": {}}}
    assert run(widgets.main, name="w", state="absent") == {"changed": False, "created": False, "widget": None}
    assert widgets.writes == ["create", "update", "delete"]


def test_a_gerrit_error_fails_the_task_with_its_message_and_status(run, widgets, monkeypatch):
    monkeypatch.setattr(widgets, "fault", gerrit.GerritError("Cannot read widget 'w': HTTP 503", 503, 4))
    assert run(widgets.main, name="w") == {"msg": "Cannot read widget 'w': HTTP 503", "status": 503,
                                           "failed": True}
    monkeypatch.setattr(widgets, "fault", gerrit.GerritError("Cannot read widget 'w': no answer"))
    assert run(widgets.main, name="w")["status"] is None
    monkeypatch.setattr(widgets, "fault", gerrit.TaskError("widget 'w' is not a widget"))
    assert run(widgets.main, name="w") == {"msg": "widget 'w' is not a widget", "failed": True}


def test_invalid_names_fail_before_any_request(run, widgets, monkeypatch):
    monkeypatch.setattr(widgets, "fault", AssertionError("read() was called"))
    result = run(widgets.main, name="a/../b")
    assert result["failed"] and result["msg"].startswith("invalid widget name 'a/../b'")
    assert "status" not in result


# -- the three modules ----------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_each_module_main_is_the_base_classs(name):
    module = MODULES[name]
    assert module.main.__func__ is gerrit.GerritModule.main.__func__
    assert issubclass(module.main.__self__, gerrit.GerritModule)
    # The frame is the base's alone: no module builds an AnsibleModule or exits by itself.
    calls = {node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
             for node in ast.walk(ast.parse((ROOT / f"library/{name}.py").read_text()))
             if isinstance(node, ast.Call)}
    assert not calls & {"AnsibleModule", "exit_json", "fail_json"}


@pytest.fixture
def double():
    with GerritDouble(username="admin", password="secret") as gerrit_double:
        gerrit_double.add_account("alice")
        gerrit_double.add_group("infra-core")
        yield gerrit_double


def test_the_modules_in_check_mode_write_nothing_and_predict_the_after_state(run, double):
    login = {"url": double.url}
    project = run(MODULES["gerrit_project"].main, check_mode=True, diff=True, name="infra/config",
                  description="Zuul", **login)
    assert project["changed"] and project["created"]
    assert project["project"] == {"name": "infra/config", "description": "Zuul", "parent": "All-Projects",
                                  "state": "present"}
    assert project["diff"] == {"before": {}, "after": project["project"]}
    group = run(MODULES["gerrit_group"].main, check_mode=True, name="infra-root", members=["alice"], **login)
    assert group["changed"] and group["created"] and group["group"]["members"] == ["alice"]
    assert "diff" not in group
    sections = {"refs/heads/*": {"permissions": {"submit": {"rules": {"infra-core": {}}}}}}
    access = run(MODULES["gerrit_access"].main, check_mode=True, diff=True, project="All-Projects",
                 sections=sections, **login)
    assert access["changed"] and "created" not in access
    assert access["sections"] == {"refs/heads/*": {"permissions": {"submit": {
        "exclusive": False, "rules": {"infra-core": {"action": "ALLOW", "force": False}}}}}}
    assert access["diff"]["after"] == access["sections"]
    assert double.writes() == []


def test_gerrit_access_exits_through_the_base(run, double, monkeypatch):
    exits = []
    base_exit = gerrit.GerritModule.exit
    monkeypatch.setattr(gerrit.GerritModule, "exit", lambda self, outcome: exits.append(outcome)
                        or base_exit(self, outcome))
    sections = {"refs/heads/*": {"permissions": {"submit": {"rules": {"infra-core": {}}}}}}
    args = dict(url=double.url, project="All-Projects", sections=sections)
    assert run(MODULES["gerrit_access"].main, **args)["changed"]
    assert not run(MODULES["gerrit_access"].main, **args)["changed"]
    assert [outcome.changed for outcome in exits] == [True, False]
    assert double.count("/a/projects/All-Projects/access", method="POST") == 1
    failed = run(MODULES["gerrit_access"].main, url=double.url, project="No-Such", sections=sections)
    assert failed["failed"] and failed["status"] == 404
    assert failed["msg"].startswith("Cannot read the access rights of project 'No-Such': HTTP 404")
