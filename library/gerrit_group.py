#!/usr/bin/python
"""Ansible module gerrit_group: see DOCUMENTATION."""

from ansible.module_utils.gerrit import (
    GerritError,
    GerritModule,
    TaskError,
    created_by_retry,
    decode_id,
    differences,
    encode,
    group_name_error,
    is_internal,
)

DOCUMENTATION = r"""
module: gerrit_group
short_description: Create a Gerrit internal group and manage its description, owner, options and members
description:
  - Creates the internal group if it does not exist (C(PUT /a/groups/{name})), then keeps its description
    (C(PUT .../description)), owner group (C(PUT .../owner)), visibility (C(PUT .../options)) and members
    (C(POST .../members.add), C(POST .../members.delete)) as given, reading them with
    C(GET /a/groups/{name}/detail). Options left unset are not managed.
  - Core Gerrit cannot delete groups, so there is no O(state=absent).
author: devinfra
options:
  name:
    description:
      - Group name. It must not be empty or start or end with whitespace.
      - Gerrit matches group names whatever their case, so V(Infra-Core) is the group V(infra-core) if that
        exists (with a warning; the module does not rename groups).
      - It must name an internal group; system groups (V(Registered Users)...) and external groups
        (LDAP...) fail the task.
    type: str
    required: true
  description:
    description:
      - Group description. V("") removes it. Not managed when omitted.
    type: str
  owner:
    description:
      - Owner group, by name or UUID; its members administer this group. Not managed when omitted;
        Gerrit makes a new group its own owner.
      - It may be an internal, system or external group. Gerrit creates a group with an internal owner
        only, so a new group with another owner is created self-owned and then given its owner.
    type: str
  members:
    description:
      - Accounts that are direct members, each as anything Gerrit resolves to one account (its
        C({account-id})) - username, numeric account ID, preferred or secondary email address, full name,
        or V(Full Name <email>). The module resolves each with C(GET /a/accounts/{account-id}) and compares
        members by account ID. Not managed when omitted.
      - A new group with no members and no owner gets the calling account as member (Gerrit's rule); with
        O(members_mode=exact) the module then removes it unless it is listed.
    type: list
    elements: str
  members_mode:
    description:
      - V(exact) makes O(members) the complete list of direct members and removes the others;
        V(append) only adds the missing ones.
    type: str
    choices: [exact, append]
    default: exact
  visible_to_all:
    description:
      - Whether every registered user may see the group. Not managed when omitted (Gerrit's default for
        a new group is V(false)).
    type: bool
  state:
    description:
      - Only V(present) exists, since core Gerrit cannot delete groups.
    type: str
    choices: [present]
    default: present
notes:
  - Only internal groups can be managed; included groups (subgroups) are not.
  - Creating a group needs the C(Create Group) capability; changing one needs ownership of it (membership
    in its owner group) or C(Administrate Server). A refusal (HTTP 403) names the right. Resolving members
    needs the account to see their accounts.
  - When the creation request was retried after a transient failure and Gerrit answers that the group
    already exists, the first attempt created it; the module goes on if the group has the task's
    description, visibility, owner and members, and fails otherwise (another client may have created it).
extends_documentation_fragment:
  - gerrit
  - action_common_attributes
attributes:
  check_mode:
    details:
      - Reads the group and reports what would change, without writing.
      - An owner group that does not exist yet is assumed to be created by an earlier task (with a warning).
"""

EXAMPLES = r"""
- name: Keep the core reviewers of infra/config
  gerrit_group:
    url: https://review.example.org
    username: admin
    password: "{{ gerrit_admin_http_password }}"
    name: infra-core
    description: Core reviewers of the infrastructure projects
    owner: Administrators
    visible_to_all: true
    members:
      - alice
      - bob@example.org
  delegate_to: localhost

- name: Add a bot account without touching the other members
  gerrit_group:
    url: https://review.example.org
    username: admin
    password: "{{ gerrit_admin_http_password }}"
    name: Service Users
    members: [zuul]
    members_mode: append
  delegate_to: localhost
"""

RETURN = r"""
group:
  description:
    - The group's managed attributes after the run; in check mode, what they would be.
    - Members are listed sorted, each as given in O(members) when it names the account, else by username,
      email address or account ID.
  returned: success
  type: dict
  contains:
    name:
      description: Group name.
      type: str
      sample: infra-core
    id:
      description: Group UUID; V(null) in check mode for a group that does not exist yet.
      type: str
      sample: 9999c971bb4ab872aab759d8c49833ee6b9ff320
    description:
      description: Description, V("") when there is none.
      type: str
    owner:
      description: Name of the owner group.
      type: str
      sample: Administrators
    visible_to_all:
      description: Whether every registered user may see the group.
      type: bool
    members:
      description: Direct members.
      type: list
      elements: str
      sample: [alice, bob@example.org]
created:
  description: Whether the group was (or, in check mode, would be) created.
  returned: success
  type: bool
  sample: false
"""


CREATE_GROUP = "the Create Group capability"


def owner_of(name):
    """The right that changes to an existing group need."""
    return (f"ownership of group '{name}' (membership in its owner group) or the Administrate Server "
            "capability")


def resolve_members(client, members, name):
    """{member as the task names it: its account ID, or None if Gerrit knows no such account}.

    Gerrit resolves a member (username, ID, any email address, full name...) to one account; so does
    GET /accounts/{account-id}, and members are then compared by ID. An unknown member is left to
    Gerrit's own error when it is added.
    """
    resolved = {}
    for member in members or []:
        account = client.call("GET", f"accounts/{encode(member)}",
                              f"resolve member '{member}' of group '{name}'", missing_ok=True)
        resolved[member] = account and account["_account_id"]
    return resolved


def label(account, resolved):
    """How results name a member: as the task does if it lists it, else by username, email or ID."""
    given = next((m for m, account_id in resolved.items() if account_id == account["_account_id"]), None)
    return given or account.get("username") or account.get("email") or str(account["_account_id"])


def view(detail, resolved):
    """The managed attributes of a group (a GroupInfo with members), as results and diffs show them.

    ``resolved`` is None when members are not managed.
    """
    result = {"name": detail["name"], "id": decode_id(detail["id"]),
              "description": detail.get("description", ""), "owner": detail.get("owner", ""),
              "visible_to_all": bool(detail.get("options", {}).get("visible_to_all"))}
    if resolved is not None:
        result["members"] = sorted(label(a, resolved) for a in detail.get("members", []))
    return result


class GerritGroup(GerritModule):
    argument_spec = dict(
        name=dict(type="str", required=True),
        description=dict(type="str"),
        owner=dict(type="str"),
        members=dict(type="list", elements="str"),
        members_mode=dict(type="str", choices=["exact", "append"], default="exact"),
        visible_to_all=dict(type="bool"),
        state=dict(type="str", choices=["present"], default="present"),
    )
    result_key = "group"
    name_checks = {"name": "group name", "owner": "owner group name"}
    name_error = staticmethod(group_name_error)
    owner = resolved = None  # the owner's GroupInfo; the members' account IDs (see resolve_members())

    def read(self):
        """The group's GroupInfo with members, or None; first the owner group and the members."""
        params, client, name = self.params, self.client, self.params["name"]
        if params["owner"] is not None:
            self.owner = self.read_owner()
        detail = client.call("GET", f"groups/{encode(name)}/detail", f"read group '{name}'", missing_ok=True)
        if detail is not None and not is_internal(detail):
            # Gerrit answers 200 for a system or external group too, without owner or members.
            raise TaskError(f"Group '{name}' is not an internal group but a system or external group: "
                            "gerrit_group manages internal groups only")
        if detail is not None and detail["name"] != name:
            self.warn(f"Group '{name}' exists as '{detail['name']}': Gerrit matches group names whatever "
                      "their case, and this module does not rename groups.")
        if params["members"] is not None:
            self.resolved = resolve_members(client, params["members"], name)
        return detail

    def read_owner(self):
        """The GroupInfo of the owner group; in check mode, one without ID if it does not exist yet."""
        owner, name = self.params["owner"], self.params["name"]
        info = self.client.call("GET", f"groups/{encode(owner)}",
                                f"read owner group '{owner}' of group '{name}'", missing_ok=self.check_mode)
        if info is None:
            self.warn(f"Owner group '{owner}' does not exist; check mode assumes that an earlier task "
                      "creates it.")
            info = {"id": None, "name": owner}
        return info

    def show(self, detail):
        return view(detail, self.resolved)

    def plan(self, detail):
        """The group as the task wants it and the calls that get there: (view, [(method, view, doing, body)]).

        A group still to be created is planned as Gerrit would create it: self-owned, without members.
        """
        params, owner, resolved = self.params, self.owner, self.resolved
        detail = detail or {"name": params["name"], "id": None, "owner": params["name"], "options": {},
                            "members": []}
        wanted_members = params["members"]
        after = view(detail, resolved)
        calls = []
        description, visible_to_all = params["description"], params["visible_to_all"]
        if description is not None and description != after["description"]:
            after["description"] = description
            calls.append(("PUT", "description", "set the description of group", {"description": description}))
        if owner is not None and (owner["id"] is None  # check mode: an owner still to be created
                                  or decode_id(owner["id"]) != decode_id(detail.get("owner_id"))):
            after["owner"] = owner["name"]
            calls.append(("PUT", "owner", "set the owner of group", {"owner": decode_id(owner["id"])}))
        if visible_to_all is not None and visible_to_all != after["visible_to_all"]:
            after["visible_to_all"] = visible_to_all
            calls.append(("PUT", "options", "set the options of group", {"visible_to_all": visible_to_all}))
        if wanted_members is not None:
            accounts = detail.get("members", [])
            current = {a["_account_id"] for a in accounts}
            add, adding = [], set()
            for member in wanted_members:
                account_id = resolved[member]
                if account_id is None or (account_id not in current and account_id not in adding):
                    add.append(member)  # an unknown member: Gerrit's answer to members.add says so
                    adding.add(account_id)
            extra = [] if params["members_mode"] == "append" else \
                [a for a in accounts if a["_account_id"] not in resolved.values()]
            if add:
                calls.append(("POST", "members.add", "add members to group", {"members": add}))
            if extra:
                calls.append(("POST", "members.delete", "remove members from group",
                              {"members": [str(a["_account_id"]) for a in extra]}))
            after["members"] = sorted([label(a, resolved) for a in accounts if a not in extra] + add)
        return after, calls

    def create(self):
        """Create the group and return its GroupInfo with members.

        Gerrit's CreateGroup takes an internal owner only (HTTP 422 for another): a group owned by a system
        or external group is created self-owned, and plan() then sets its owner.
        """
        params, client, owner, resolved = self.params, self.client, self.owner, self.resolved
        name = params["name"]
        owner_id = decode_id(owner["id"]) if owner and is_internal(owner) else None
        body = {"name": name, "description": params["description"], "members": params["members"],
                "visible_to_all": params["visible_to_all"], "owner_id": owner_id}
        detail_path = f"groups/{encode(name)}/detail"
        try:
            client.call("PUT", f"groups/{encode(name)}", f"create group '{name}'",
                        {key: value for key, value in body.items() if value is not None}, needs=CREATE_GROUP)
        except GerritError as exc:
            if not created_by_retry(exc):
                raise
            # An earlier attempt created it, or another client did: go on only if it is the task's group.
            detail = client.call("GET", detail_path, f"read group '{name}'")
            current = view(detail, resolved)
            asked = {key: params[key] for key in ("description", "visible_to_all") if params[key] is not None}
            if owner_id:
                asked["owner"] = owner["name"]
            differ = differences(current, asked)
            problems = [differ] if differ else []
            ids = {a["_account_id"] for a in detail.get("members", [])}
            missing = [m for m, account_id in (resolved or {}).items() if account_id not in ids]
            if missing:
                problems.append(f"members {', '.join(missing)} missing")
            if problems:
                raise GerritError(f"{exc}; group '{name}' exists now but differs from the task: "
                                  f"{'; '.join(problems)}; another client may have created it",
                                  exc.status, exc.attempts) from None
            return detail
        # Gerrit may have made the caller a member: what is left to do comes from the new group.
        return client.call("GET", detail_path, f"read group '{name}'")

    def update(self, detail, calls):
        client, name = self.client, self.params["name"]
        uuid_path = f"groups/{encode(decode_id(detail['id']))}"  # a name is unique, a UUID stable
        for method, group_view, doing, body in calls:
            client.call(method, f"{uuid_path}/{group_view}", f"{doing} '{name}'", body, needs=owner_of(name))
        return view(client.call("GET", f"{uuid_path}/detail", f"read group '{name}'"), self.resolved)


main = GerritGroup.main


if __name__ == "__main__":
    main()
