#!/usr/bin/python
"""Ansible module gerrit_project: see DOCUMENTATION."""

from ansible.module_utils.gerrit import (
    GerritError,
    GerritModule,
    created_by_retry,
    differences,
    encode,
    project_name_error,
)

DOCUMENTATION = r"""
module: gerrit_project
short_description: Create a Gerrit project and manage its description, parent, state and submit type
description:
  - Creates the project if it does not exist (C(PUT /a/projects/{name})), then keeps its description
    (C(PUT .../description)), parent (C(PUT .../parent)), state and default submit type
    (C(PUT .../config)) as given. Options left unset are not managed.
  - Core Gerrit cannot delete projects (only the C(delete-project) plugin can), so there is no
    O(state=absent); make a project O(state=hidden) or O(state=read_only) instead.
author: devinfra
options:
  name:
    description:
      - Project name, for example V(infra/config).
      - It must not start or end with V(/), contain V(..), whitespace or any of V(\\?%*:<>|$~), or end
        in V(.git); such names fail before any request is made.
    type: str
    required: true
  description:
    description:
      - Project description. V("") removes it. Not managed when omitted.
    type: str
  parent:
    description:
      - Parent project the access rights are inherited from. Not managed when omitted;
        Gerrit makes V(All-Projects) the parent of a new project.
      - Changing the parent of an existing project needs the C(Administrate Server) capability.
    type: str
  state:
    description:
      - V(present) is Gerrit's C(ACTIVE) state, V(read_only) its C(READ_ONLY) state (readable, no pushes
        or reviews), V(hidden) its C(HIDDEN) state (visible to the project owners only).
      - While a project is read-only or hidden, Gerrit refuses other changes to it; this module sets the
        description together with the state, but to change the parent make the project V(present) first.
    type: str
    choices: [present, read_only, hidden]
    default: present
  submit_type:
    description:
      - Default submit type of the project's changes (C(default_submit_type) in Gerrit's project config).
        V(INHERIT) takes the parent's. Not managed when omitted.
    type: str
    choices: [INHERIT, MERGE_IF_NECESSARY, FAST_FORWARD_ONLY, REBASE_IF_NECESSARY, REBASE_ALWAYS,
              MERGE_ALWAYS, CHERRY_PICK]
notes:
  - Creating a project needs the C(Create Project) capability; changing its description, state or submit
    type needs ownership of the project (the C(Owner) permission on C(refs/*)); changing its parent needs
    C(Administrate Server), which also grants the other two. A refusal (HTTP 403) names the right.
  - When the creation request was retried after a transient failure and Gerrit answers that the project
    already exists, the first attempt created it; the module goes on if the project has the task's
    description, parent and submit type, and fails otherwise (another client may have created it).
extends_documentation_fragment:
  - gerrit
  - action_common_attributes
attributes:
  check_mode:
    details: Reads the project and reports what would change, without writing.
"""

EXAMPLES = r"""
- name: Create the infra/config project
  gerrit_project:
    url: https://review.example.org
    username: admin
    password: "{{ gerrit_admin_http_password }}"
    name: infra/config
    description: Zuul's tenant and job configuration
    parent: Infra-Projects
    submit_type: REBASE_IF_NECESSARY
  delegate_to: localhost

- name: Retire an old project (Gerrit cannot delete it)
  gerrit_project:
    url: https://review.example.org
    username: admin
    password: "{{ gerrit_admin_http_password }}"
    name: attic/old-tool
    state: read_only
  delegate_to: localhost
"""

RETURN = r"""
project:
  description:
    - The project's managed attributes after the run; in check mode, what they would be.
    - RV(project.submit_type) is only returned when O(submit_type) is given.
  returned: success
  type: dict
  contains:
    name:
      description: Project name.
      type: str
      sample: infra/config
    description:
      description: Description, V("") when there is none.
      type: str
      sample: Zuul's tenant and job configuration
    parent:
      description: Parent project.
      type: str
      sample: All-Projects
    state:
      description: V(present), V(read_only) or V(hidden) (Gerrit's C(ACTIVE), C(READ_ONLY), C(HIDDEN)).
      type: str
      sample: present
    submit_type:
      description: Configured default submit type.
      type: str
      sample: REBASE_IF_NECESSARY
created:
  description: Whether the project was (or, in check mode, would be) created.
  returned: success
  type: bool
  sample: false
"""


GERRIT_STATES = {"present": "ACTIVE", "read_only": "READ_ONLY", "hidden": "HIDDEN"}
CREATE_PROJECT = "the Create Project capability"
ADMINISTRATE_SERVER = "the Administrate Server capability"
OPTION_STATES = {value: key for key, value in GERRIT_STATES.items()}
SUBMIT_TYPES = ["INHERIT", "MERGE_IF_NECESSARY", "FAST_FORWARD_ONLY", "REBASE_IF_NECESSARY",
                "REBASE_ALWAYS", "MERGE_ALWAYS", "CHERRY_PICK"]


def read_project(client, name, with_submit_type):
    """The managed attributes of the project, or None if it does not exist."""
    info = client.call("GET", f"projects/{encode(name)}", f"read project '{name}'", missing_ok=True)
    if info is None:
        return None
    project = {"name": name, "description": info.get("description", ""), "parent": info.get("parent", ""),
               "state": OPTION_STATES[info.get("state", "ACTIVE")]}
    if with_submit_type:
        config = client.call("GET", f"projects/{encode(name)}/config", f"read the config of project '{name}'")
        # Since Gerrit 3.0 submit_type is the effective value; the configured one is in default_submit_type.
        project["submit_type"] = config.get("default_submit_type", {}).get("configured_value",
                                                                           config.get("submit_type"))
    return project


def owner_of(name):
    """The right that changes to an existing project need."""
    return f"ownership of project '{name}' (the Owner permission on refs/*) or {ADMINISTRATE_SERVER}"


class GerritProject(GerritModule):
    argument_spec = dict(
        name=dict(type="str", required=True),
        description=dict(type="str"),
        parent=dict(type="str"),
        state=dict(type="str", choices=list(GERRIT_STATES), default="present"),
        submit_type=dict(type="str", choices=SUBMIT_TYPES),
    )
    result_key = "project"
    name_checks = {"name": "project name", "parent": "parent project name"}
    name_error = staticmethod(project_name_error)

    def __init__(self):
        super().__init__()
        self.wanted = {key: self.params[key] for key in self.argument_spec if self.params[key] is not None}

    def read(self):
        return read_project(self.client, self.wanted["name"], "submit_type" in self.wanted)

    def plan(self, current):
        """The project as the task wants it (a new one: with Gerrit's defaults), and the keys that differ."""
        after = {**(current or {"description": "", "parent": "All-Projects"}), **self.wanted}
        return after, {key for key, value in self.wanted.items() if (current or {}).get(key) != value}

    def create(self):
        client, wanted = self.client, self.wanted
        name = wanted["name"]
        after = self.plan(None)[0]
        body = {key: wanted[key] for key in ("name", "description", "parent", "submit_type") if key in wanted}
        try:
            client.call("PUT", f"projects/{encode(name)}", f"create project '{name}'", body,
                        needs=CREATE_PROJECT)
        except GerritError as exc:
            if not created_by_retry(exc):
                raise
            # An earlier attempt created it, or another client did: go on only if it is the task's project.
            current = self.read()
            asked = {key: after[key] for key in ("description", "parent", "submit_type") if key in after}
            if current is None or differences(current, asked):
                raise GerritError(f"{exc}; project '{name}' exists now but differs from the task: "
                                  f"{differences(current or {}, asked)}; another client may have created it",
                                  exc.status, exc.attempts) from None
        if wanted["state"] != "present":
            set_config(client, name, {"state": GERRIT_STATES[wanted["state"]],
                                      "description": after["description"]})
        return self.read()

    def update(self, current, changes):
        """Apply the differences, in an order a read-only or hidden project accepts."""
        client, wanted = self.client, self.wanted
        name = wanted["name"]
        config = {}
        if changes & {"state", "submit_type"} or (current["state"] != "present" and "description" in changes):
            # The config input always carries the description: Gerrit removes it when it is missing.
            config = {"state": GERRIT_STATES[wanted["state"]],
                      "description": wanted.get("description", current["description"])}
            if "submit_type" in wanted:
                config["submit_type"] = wanted["submit_type"]
        config_first = config and wanted["state"] == "present"  # reactivate before the other writes
        if config_first:
            set_config(client, name, config)
        if "description" in changes and not config:
            client.call("PUT", f"projects/{encode(name)}/description",
                        f"set the description of project '{name}'", {"description": wanted["description"]},
                        needs=owner_of(name))
        if "parent" in changes:
            client.call("PUT", f"projects/{encode(name)}/parent", f"set the parent of project '{name}'",
                        {"parent": wanted["parent"]}, needs=ADMINISTRATE_SERVER)
        if config and not config_first:
            set_config(client, name, config)
        return self.read()


def set_config(client, name, config):
    client.call("PUT", f"projects/{encode(name)}/config", f"set the config of project '{name}'", config,
                needs=owner_of(name))


main = GerritProject.main


if __name__ == "__main__":
    main()
