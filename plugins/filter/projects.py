"""Filters that read the projects file (projects/projects.yaml).

``devinfra_projects(projects, acls)`` checks every entry and returns it
complete: defaults filled in and its ACL template expanded with the
project's core group (not expanded when ``acls`` is left out), ready for the gerrit_group, gerrit_project and
gerrit_access modules. ``devinfra_zuul_tenant(projects, name, connection)``
returns the Zuul tenant entry (the main.yaml format) for the projects that
Zuul runs jobs for. A bad entry raises an error naming it and its field.

Project names and ``parent`` follow Gerrit's project name rules as far as
this file allows them: slash-separated segments of letters, digits, ``.``,
``_`` and ``-``, each starting with a letter or digit, no ``..``, no
``.git`` suffix. A ``core_group`` is one such segment (it also names the
project's group in Pagure). ``parent`` and ``core_group`` left out or
``null`` take their defaults.
"""

from __future__ import annotations

import copy
import re
import runpy
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import SimpleNamespace

try:
    from ansible.errors import AnsibleFilterError
except ImportError:  # pragma: no cover - only without ansible installed
    AnsibleFilterError = ValueError  # type: ignore[misc,assignment]

FIELDS = {"project", "description", "parent", "acl", "core_group", "state", "zuul"}
STATES = ("present", "read_only", "hidden")
ZUUL_MODES = ("config", "gate", "check", "none")
# Matched whole (fullmatch): "$" would let a trailing newline in.
_SEGMENT = r"[A-Za-z0-9][A-Za-z0-9._-]*"
_NAME = re.compile(rf"{_SEGMENT}(/{_SEGMENT})*")
_GROUP = re.compile(_SEGMENT)
# plugins/module_utils/checks.py of this checkout, by its path: controller plugins cannot import
# a repository's module_utils.
checks = SimpleNamespace(**runpy.run_path(str(Path(__file__).parents[1] / "module_utils" / "checks.py")))


def _project_name(value: object) -> bool:
    return isinstance(value, str) and bool(_NAME.fullmatch(value)) and not value.endswith(".git") \
        and ".." not in value


def _string(entry: Mapping, key: str, default: str, where: str) -> str:
    """``entry[key]``, ``default`` when it is left out or null; anything but a string is an error."""
    value = entry.get(key)
    if value is None:
        return default
    if not isinstance(value, str):
        raise AnsibleFilterError(f"{where}: {key} {value!r} must be a string")
    return value


def _expand(template: object, core_group: str) -> object:
    """The ACL template with {core_group} replaced in keys and values."""
    if isinstance(template, Mapping):
        return {_expand(k, core_group): _expand(v, core_group) for k, v in template.items()}
    if isinstance(template, list):
        return [_expand(v, core_group) for v in template]
    if isinstance(template, str):
        return template.replace("{core_group}", core_group)
    return copy.deepcopy(template)


def projects(entries: Sequence[object], acls: Mapping[str, object] | None = None) -> list[dict]:
    """Check and complete the entries; without ``acls`` (Zuul's use) ACLs are not expanded."""
    if not isinstance(entries, Sequence) or isinstance(entries, str):
        raise AnsibleFilterError("the projects file must be a list of projects")
    result, seen = [], set()
    for index, entry in enumerate(entries):
        where = checks.where("projects", index, entry, key="project")
        if not isinstance(entry, Mapping):
            raise AnsibleFilterError(f"{where}: expected a mapping, got {entry!r}")
        unknown = set(entry) - FIELDS
        if unknown:
            raise AnsibleFilterError(f"{where}: unknown field(s) {', '.join(sorted(map(str, unknown)))} "
                                     f"(allowed: {', '.join(sorted(FIELDS))})")
        name = entry.get("project")
        if not _project_name(name):
            raise AnsibleFilterError(f"{where}: project name {name!r} is not a valid Gerrit project name")
        if name in seen:
            raise AnsibleFilterError(f"{where}: project {name} is listed twice")
        seen.add(name)
        description = _string(entry, "description", "", where)
        parent = entry.get("parent")
        parent = "All-Projects" if parent is None else parent
        if not _project_name(parent):
            raise AnsibleFilterError(f"{where}: parent {parent!r} is not a valid Gerrit project name")
        acl = _string(entry, "acl", "default", where)
        if acls is not None and acl not in acls:
            raise AnsibleFilterError(f"{where}: acl {acl!r} has no template in projects/acls/ "
                                     f"(known: {', '.join(sorted(acls))})")
        state = entry.get("state", "present")
        if state not in STATES:
            raise AnsibleFilterError(f"{where}: state {state!r} is not one of {', '.join(STATES)}")
        zuul = entry.get("zuul", "none")
        if zuul not in ZUUL_MODES:
            raise AnsibleFilterError(f"{where}: zuul {zuul!r} is not one of {', '.join(ZUUL_MODES)}")
        core_group = _string(entry, "core_group", f"{name.rsplit('/', 1)[-1]}-core", where)
        if not _GROUP.fullmatch(core_group) or ".." in core_group:
            raise AnsibleFilterError(f"{where}: core_group {core_group!r} is not a valid group name "
                                     "(letters, digits, '.', '_' and '-', starting with a letter or digit, "
                                     "no '..')")
        result.append({
            "project": name,
            "description": description,
            "parent": parent,
            "acl": acl,
            "core_group": core_group,
            "state": state,
            "zuul": zuul,
            "access": _expand(acls[acl], core_group) if acls is not None else None,
        })
    return result


def zuul_tenant(entries: Sequence[Mapping], name: str, connection: str = "gerrit") -> dict:
    """The tenant entry of Zuul's main.yaml for checked projects."""
    config = [p["project"] for p in entries if p["zuul"] == "config"]
    untrusted = [p["project"] for p in entries if p["zuul"] in ("gate", "check")]
    if not config:
        raise AnsibleFilterError(f"tenant {name}: no project has `zuul: config`; Zuul needs one "
                                 "trusted config project for its pipelines")
    return {"tenant": {"name": name, "source": {connection: {
        "config-projects": config, "untrusted-projects": untrusted}}}}


def pagure(entries: Sequence[Mapping], members: Mapping[str, Sequence[str]], bot: str,
           webhook: str = "") -> dict:
    """Pagure's groups and projects (the pagure role's pagure_groups, pagure_projects) for checked projects.

    Each project's core group gets commit access and its members from
    ``members`` (group name to user names: who is core lives in the private
    or AIO inventory, not in the projects file); the bot (Zuul) gets commit
    access to flag, comment and merge; ``webhook`` is where Pagure sends the
    project's events. A core group with no members is an error naming the
    project: nobody could approve its changes.
    """
    groups, result = {}, []
    for index, entry in enumerate(entries):
        where = checks.where("projects", index, entry, key="project")
        core = entry["core_group"]
        who = list(members.get(core) or [])
        if not who:
            raise AnsibleFilterError(f"{where}: core group {core} has no members (set them in "
                                     f"projects_pagure_core_members); nobody could approve its changes")
        groups[core] = who
        settings = {"pull_requests": True}
        if webhook:
            settings["Web-hooks"] = webhook
        result.append({
            "name": entry["project"],
            "description": entry["description"],
            "groups": {core: "commit"},
            "users": {bot: "commit"},
            "settings": settings,
        })
    return {
        "groups": [{"name": name, "description": f"Core reviewers ({name})", "members": sorted(who)}
                   for name, who in sorted(groups.items())],
        "projects": result,
    }


class FilterModule:
    def filters(self):
        return {"devinfra_projects": projects, "devinfra_zuul_tenant": zuul_tenant,
                "devinfra_pagure": pagure}
