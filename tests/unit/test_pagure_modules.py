"""library/pagure_accounts.py: the checks made before anything changes.

The modules' work on a real Pagure (users, groups, tokens, projects, check
mode, idempotence) is tested by molecule/pagure, on Debian's Pagure: there
is no Pagure on the controller. Here: every bad entry is named.
"""

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "A" * 64
ACLS = {"pull_request_merge", "pull_request_flag", "pull_request_comment"}


def load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def accounts():
    # The module imports its helper as Ansible ships it (ansible.module_utils.pagure_db).
    load("ansible.module_utils.pagure_db", ROOT / "plugins/module_utils/pagure_db.py")
    return load("pagure_accounts", ROOT / "library/pagure_accounts.py")


def params(**overrides):
    base = {
        "admin_user": "admin",
        "users": [{"name": "admin", "email": "admin@example.org", "ssh_keys": None},
                  {"name": "alice", "email": "alice@example.org", "ssh_keys": None}],
        "groups": [{"name": "infra-core", "description": "", "members": ["alice"]}],
        "tokens": [{"value": TOKEN, "user": "alice", "acls": ["pull_request_merge"], "valid_days": 365}],
    }
    base.update(overrides)
    return base


def test_good_entries_have_no_problem():
    assert accounts().check(params(), set(), ACLS) == []


def test_a_core_group_without_members_is_named():
    problems = accounts().check(params(groups=[{"name": "infra-core", "description": "", "members": []}]),
                                set(), ACLS)
    assert problems == [
        "groups[0] (infra-core): has no members (a core group without members can approve nothing)"]


def test_unknown_members_acls_and_bad_tokens_are_named():
    bad = params(
        groups=[{"name": "infra core", "description": "", "members": ["mallory"]}],
        tokens=[{"value": "short", "user": "nobody", "acls": ["pull_request_approve"], "valid_days": 999}],
    )
    problems = accounts().check(bad, set(), ACLS)
    assert "groups[0] (infra core): a group name may not be empty or hold spaces" in problems
    assert "groups[0] (infra core): member 'mallory' is not a user" in problems
    assert "tokens[0] (user nobody): the value must be 64 characters from A-Z and 0-9" in problems
    assert "tokens[0] (user nobody): user 'nobody' is not a user" in problems
    assert any(p.startswith("tokens[0] (user nobody): unknown ACL(s) pull_request_approve") for p in problems)
    assert "tokens[0] (user nobody): valid_days must be between 1 and 730" in problems


def test_users_already_in_pagure_count_as_members():
    assert accounts().check(params(users=[{"name": "admin", "email": "a@b", "ssh_keys": None}]),
                            {"alice"}, ACLS) == []


def test_an_admin_user_nobody_knows_is_named():
    problems = accounts().check(params(admin_user="root"), set(), ACLS)
    assert problems == ["admin_user 'root' is neither listed in users nor known to Pagure"]


def test_a_missing_pagure_is_a_sentence(tmp_path):
    utils = load("ansible.module_utils.pagure_db", ROOT / "plugins/module_utils/pagure_db.py")
    try:
        utils.open_pagure(str(tmp_path / "pagure.cfg"))
    except utils.PagureHostError as exc:
        assert str(exc) == f"Pagure's configuration {tmp_path / 'pagure.cfg'} does not exist on this host"
    else:
        raise AssertionError("no error for a missing configuration")
