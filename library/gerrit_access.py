#!/usr/bin/python
"""Ansible module gerrit_access: see DOCUMENTATION."""

from ansible.module_utils.gerrit import (
    GerritModule,
    TaskError,
    decode_id,
    encode,
    project_name_error,
)

DOCUMENTATION = r"""
module: gerrit_access
short_description: Set the access rights of a Gerrit project
description:
  - Makes the access sections of a project (its C(project.config) on C(refs/meta/config)) exactly as given,
    for the ref patterns named in O(sections). Reads them with C(GET /a/projects/{name}/access) and changes
    them with one C(POST /a/projects/{name}/access). Each section that differs is removed and added again
    as given, so rules and permissions not listed are dropped.
  - Sections for ref patterns not named in O(sections) are left alone unless O(purge_other_sections=true).
  - Group names are resolved to group UUIDs with C(GET /a/groups/{name}) (or found in the project's access
    information); an unknown group fails the task before anything is written.
author: devinfra
options:
  project:
    description:
      - Project whose access rights to set, for example V(infra/config) or V(All-Projects).
    type: str
    required: true
  sections:
    description:
      - Access sections by ref pattern (V(refs/heads/*), V(^refs/heads/stable-.*), V(refs/meta/config)...), or
        V(GLOBAL_CAPABILITIES) (on V(All-Projects) only).
      - Each section is a dictionary with one key, C(permissions), that maps permission names (V(read),
        V(push), V(submit), V(label-Code-Review)...) to a dictionary with C(rules) and optionally
        C(exclusive) (boolean, default V(false); whether the permission ignores what parent projects grant).
        Gerrit keeps C(exclusive) on neither global capabilities nor the C(owner) permission, so
        C(exclusive=true) there fails the task, naming the permission.
      - C(rules) maps group names or UUIDs to a rule, a dictionary with C(action) (V(ALLOW), the default,
        V(DENY), V(BLOCK), or V(INTERACTIVE) and V(BATCH) for the C(priority) capability), C(force) (boolean,
        default V(false)), and C(min) and C(max) (integers, together) for the permissions that have a range,
        labels (V(label-*), V(labelAs-*), V(removeLabel-*)) and the V(queryLimit) and V(batchChangesLimit)
        capabilities. Gerrit drops a range from any other permission, so one there fails the task.
        An empty rule (V(null) or V({})) is an C(ALLOW) rule.
      - A ref pattern mapped to no permissions (V({}) or V(null)) removes that section.
    type: dict
    required: true
  purge_other_sections:
    description:
      - Also remove every section of the project that O(sections) does not name (inherited sections are not
        affected).
    type: bool
    default: false
  message:
    description:
      - Commit message of the change to C(refs/meta/config); Gerrit's default when omitted.
    type: str
notes:
  - Changing the access rights needs ownership of the project (the C(Owner) permission on C(refs/*)) or
    C(Administrate Server); changing V(GLOBAL_CAPABILITIES) needs C(Administrate Server). A refusal
    (HTTP 403) names the right.
  - A V(GLOBAL_CAPABILITIES) section replaces the whole section of V(All-Projects) like any other, so keep
    the C(administrateServer) rule of the C(Administrators) group in it.
extends_documentation_fragment:
  - gerrit
  - action_common_attributes
attributes:
  check_mode:
    details:
      - Reads the access rights, resolves the groups and reports what would change, without writing.
      - A project or group that does not exist yet is assumed to be created by an earlier task (with a
        warning), so that a whole playbook can be checked against a new Gerrit.
  diff_mode:
    details: The managed sections before and after, with group names.
"""

EXAMPLES = r"""
- name: Let infra-core review and submit on infra/config
  gerrit_access:
    url: https://review.example.org
    username: admin
    password: "{{ gerrit_admin_http_password }}"
    project: infra/config
    sections:
      refs/heads/*:
        permissions:
          label-Code-Review:
            rules:
              infra-core: {min: -2, max: 2}
              Registered Users: {min: -1, max: 1}
          submit:
            rules:
              infra-core: {}
              Service Users: {action: BLOCK}
      refs/meta/config:
        permissions:
          read:
            exclusive: true
            rules:
              infra-core: {}
  delegate_to: localhost

- name: Keep only these sections on the project
  gerrit_access:
    url: https://review.example.org
    username: admin
    password: "{{ gerrit_admin_http_password }}"
    project: attic/old-tool
    purge_other_sections: true
    message: Restrict the retired project to its owners
    sections:
      refs/*:
        permissions:
          read:
            exclusive: true
            rules:
              Administrators: {}
  delegate_to: localhost
"""

RETURN = r"""
sections:
  description:
    - The managed sections after the run (in check mode, what they would be), in the form of O(sections),
      with group names and every default spelled out. Removed sections are absent.
  returned: success
  type: dict
  sample:
    refs/heads/*:
      permissions:
        submit:
          exclusive: false
          rules:
            infra-core: {action: ALLOW, force: false}
"""


GLOBAL = "GLOBAL_CAPABILITIES"
ACTIONS = ("ALLOW", "DENY", "BLOCK", "INTERACTIVE", "BATCH")
# Where Gerrit keeps a rule's min and max (Permission.hasRange, GlobalCapability.hasRange).
LABEL_PREFIXES = ("label-", "labelAs-", "removeLabel-")
RANGED_CAPABILITIES = ("queryLimit", "batchChangesLimit")
ADMINISTRATE_SERVER = "the Administrate Server capability"


def ranged(ref, permission):
    """Whether Gerrit keeps min and max on the rules of ``permission`` in section ``ref``."""
    if ref == GLOBAL:
        return permission in RANGED_CAPABILITIES
    return any(permission.startswith(prefix) and permission != prefix for prefix in LABEL_PREFIXES)


class InvalidSections(ValueError):
    """O(sections) is malformed; the message names the offending key."""


def mapping(value, where):
    """``value`` as a dict (None is empty); anything else is an error about ``where``."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidSections(f"{where} must be a dictionary, not {type(value).__name__}")
    return value


def only_keys(value, allowed, where):
    unknown = sorted(set(value) - set(allowed))
    if unknown:
        raise InvalidSections(f"{where} has unknown key(s) {', '.join(unknown)}; "
                              f"allowed: {', '.join(allowed)}")


def parse_rule(value, where, has_range=True, permission=""):
    """A rule as Gerrit returns it: action, force and, for ranges, min and max.

    Without ``has_range`` a range is an error: Gerrit would drop it, and every run would set it again.
    """
    value = mapping(value, where)
    only_keys(value, ("action", "force", "min", "max"), where)
    action = str(value.get("action", "ALLOW")).upper()
    if action not in ACTIONS:
        raise InvalidSections(f"{where}.action must be one of {', '.join(ACTIONS)}, not {value['action']}")
    if not isinstance(value.get("force", False), bool):
        raise InvalidSections(f"{where}.force must be true or false")
    rule = {"action": action, "force": value.get("force", False)}
    bounds = [value.get("min"), value.get("max")]
    if not has_range and bounds != [None, None]:
        raise InvalidSections(f"{where}: min and max apply only to labels (label-*, labelAs-*, "
                              f"removeLabel-*) and the {' and '.join(RANGED_CAPABILITIES)} capabilities; "
                              f"Gerrit drops them from the rules of {permission}")
    if bounds.count(None) == 1:
        raise InvalidSections(f"{where} needs both min and max, or neither")
    if None not in bounds:
        if not all(isinstance(b, int) and not isinstance(b, bool) for b in bounds) or bounds[0] > bounds[1]:
            raise InvalidSections(f"{where}: min and max must be integers with min <= max")
        if bounds != [0, 0]:  # Gerrit stores and returns no 0..0 range
            rule.update(min=bounds[0], max=bounds[1])
    return rule


def parse_sections(sections):
    """O(sections), checked, as {ref: {permission: {"exclusive": bool, "rules": {group: rule}}}}.

    A section without permissions is {}: the section must not exist.
    """
    parsed = {}
    for ref, section in sections.items():
        where = f"sections[{ref!r}]"
        if ref != GLOBAL and not ref.startswith(("refs/", "^refs/")):
            raise InvalidSections(f"{where}: a section is a ref pattern starting with refs/ or ^refs/, "
                                  f"or {GLOBAL}")
        section = mapping(section, where)
        only_keys(section, ("permissions",), where)
        parsed[ref] = {}
        for name, permission in mapping(section.get("permissions"), f"{where}.permissions").items():
            at = f"{where}.permissions.{name}"
            permission = mapping(permission, at)
            only_keys(permission, ("exclusive", "rules"), at)
            rules = mapping(permission.get("rules"), f"{at}.rules")
            if not rules:
                raise InvalidSections(f"{at}.rules must name at least one group")
            if not isinstance(permission.get("exclusive", False), bool):
                raise InvalidSections(f"{at}.exclusive must be true or false")
            if permission.get("exclusive") and (ref == GLOBAL or name == "owner"):
                what = "a global capability" if ref == GLOBAL else "the owner permission"
                raise InvalidSections(f"{at}.exclusive: {name} is {what}, which Gerrit never makes "
                                      "exclusive (it drops the flag)")
            parsed[ref][name] = {"exclusive": permission.get("exclusive", False),
                                 "rules": {str(group): parse_rule(rule, f"{at}.rules[{group!r}]",
                                                                  ranged(ref, name), name)
                                           for group, rule in rules.items()}}
    return parsed


def from_gerrit(local):
    """Gerrit's ``local`` sections (rules by group UUID) in the form parse_sections() returns."""
    def rule(info):
        parsed = {"action": info.get("action", "ALLOW"), "force": bool(info.get("force"))}
        if info.get("min") or info.get("max"):  # Gerrit leaves out a 0..0 range
            parsed.update(min=info.get("min", 0), max=info.get("max", 0))
        return parsed
    return {ref: {name: {"exclusive": bool(permission.get("exclusive")),
                         "rules": {uuid: rule(info) for uuid, info in permission.get("rules", {}).items()}}
                  for name, permission in section.get("permissions", {}).items()}
            for ref, section in local.items()}


def by_uuid(section, uuids):
    return {name: {"exclusive": p["exclusive"], "rules": {uuids[group]: r for group, r in p["rules"].items()}}
            for name, p in section.items()}


def to_gerrit(section):
    """A parsed section (rules by UUID) as an AccessSectionInfo."""
    return {"permissions": {name: {"exclusive": p["exclusive"], "rules": p["rules"]}
                            for name, p in section.items()}}


def shown(sections, names):
    """Sections with group names instead of UUIDs, in the form of O(sections), for results and diffs."""
    def permission(p):
        return {"exclusive": p["exclusive"],
                "rules": {names.get(uuid, uuid): rule for uuid, rule in p["rules"].items()}}
    return {ref: {"permissions": {name: permission(p) for name, p in section.items()}}
            for ref, section in sorted(sections.items()) if section}


def resolve_groups(client, project, wanted, access, check_mode):
    """({group name or UUID in ``wanted``: UUID}, {UUID: name} of every group seen, [missing groups]).

    In check mode a group that does not exist is missing rather than an error (an earlier task may
    create it) and stands for itself.
    """
    names = {uuid: info.get("name", uuid) for uuid, info in access.get("groups", {}).items()}
    known = {**{name: uuid for uuid, name in names.items()}, **{uuid: uuid for uuid in names}}
    uuids, missing = {}, []
    for group in sorted({g for section in wanted.values() for p in section.values() for g in p["rules"]}):
        if group not in known:
            info = client.call("GET", f"groups/{encode(group)}",
                               f"resolve group '{group}' for the access rights of project '{project}'",
                               missing_ok=check_mode)
            if info is None:
                missing.append(group)
                info = {"id": group, "name": group}
            known[group] = decode_id(info["id"])
            names[known[group]] = info.get("name", group)
        uuids[group] = known[group]
    return uuids, names, missing


class GerritAccess(GerritModule):
    argument_spec = dict(
        project=dict(type="str", required=True),
        sections=dict(type="dict", required=True),
        purge_other_sections=dict(type="bool", default=False),
        message=dict(type="str"),
    )
    result_key = "sections"
    name_checks = {"project": "project name"}
    name_error = staticmethod(project_name_error)
    # The sections as parse_sections() makes them (rules by group name or UUID), then by UUID; the refs
    # managed; the managed sections as the task wants them (by UUID); {UUID: group name}.
    sections = wanted = managed = after = names = None

    def check(self):
        super().check()
        try:
            self.sections = parse_sections(self.params["sections"])
        except InvalidSections as exc:
            raise TaskError(f"invalid access sections for project '{self.params['project']}': {exc}") \
                from None

    def read(self):
        """The managed sections of the project (rules by UUID); first the groups the task names."""
        project, client, check_mode = self.params["project"], self.client, self.check_mode
        assumed = "check mode assumes that an earlier task creates it"
        access = client.call("GET", f"projects/{encode(project)}/access",
                             f"read the access rights of project '{project}'", missing_ok=check_mode)
        if access is None:
            self.warn(f"Project '{project}' does not exist; {assumed}, with no access sections.")
            access = {}
        uuids, self.names, missing = resolve_groups(client, project, self.sections, access, check_mode)
        for group in missing:
            self.warn(f"Group '{group}' does not exist; {assumed}.")
        current = from_gerrit(access.get("local", {}))
        wanted = self.wanted = {ref: by_uuid(section, uuids) for ref, section in self.sections.items()}
        self.managed = set(wanted) | (set(current) if self.params["purge_other_sections"] else set())
        self.after = {ref: wanted[ref] for ref in self.managed if wanted.get(ref)}
        return {ref: current[ref] for ref in self.managed if ref in current}

    def show(self, sections):
        return shown(sections, self.names)

    def plan(self, current):
        """The sections as the task wants them and the ProjectAccessInput that makes them so, if any."""
        wanted = self.wanted
        remove = {ref: {"permissions": {}} for ref in sorted(current) if current[ref] != wanted.get(ref)}
        add = {ref: to_gerrit(wanted[ref]) for ref in sorted(wanted)
               if wanted[ref] and current.get(ref) != wanted[ref]}
        return self.show(self.after), (remove or add) and {"remove": remove, "add": add}

    def update(self, current, body):
        project = self.params["project"]
        if self.params["message"]:
            body["message"] = self.params["message"]
        needs = f"ownership of project '{project}' (the Owner permission on refs/*) or {ADMINISTRATE_SERVER}"
        if GLOBAL in body["remove"] or GLOBAL in body["add"]:
            needs = f"{ADMINISTRATE_SERVER} (for {GLOBAL})"
        stored = from_gerrit(self.client.call("POST", f"projects/{encode(project)}/access",
                                              f"set the access rights of project '{project}'", body,
                                              needs=needs).get("local", {}))
        stored = {ref: stored[ref] for ref in self.managed if ref in stored}
        if stored != self.after:
            self.warn(f"Gerrit stored the access rights of project '{project}' differently than asked; "
                      "the next run will change them again. Compare the diff with the sections given.")
        return self.show(stored)


main = GerritAccess.main


if __name__ == "__main__":
    main()
