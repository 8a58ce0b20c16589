#!/usr/bin/python
"""Ansible module pagure_project: see DOCUMENTATION."""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.pagure_db import PAGURE_DB_ARGUMENT_SPEC, PagureHostError, open_pagure

DOCUMENTATION = r"""
module: pagure_project
short_description: Create a Pagure project and keep its description, access and settings
description:
  - Runs on the Pagure host, as Pagure's service user, with Pagure's own library (the way
    C(pagure-admin) does). A new project is created by Pagure's worker (C(pagure-worker) must run), which
    makes its git repositories; the module waits for it.
  - Group and user access is made exactly what is given (V(admin), V(commit), V(collaborator) or V(ticket));
    the owner keeps its implicit admin right. Settings are Pagure's project options (the keys of
    C(GET /api/0/<project>/options)); only the keys given are managed.
author: devinfra
options:
  config:
    description: Pagure's configuration file.
    type: path
    default: /etc/pagure/pagure.cfg
  name:
    description: C(namespace/name) or C(name). The namespace must be in Pagure's C(ALLOWED_PREFIX).
    type: str
    required: true
  owner:
    description: The user who owns a new project (not changed afterwards).
    type: str
    required: true
  description:
    description: One line.
    type: str
    default: ""
  default_branch:
    description: The branch a new project starts with.
    type: str
    default: master
  groups:
    description: Group name to access level; exactly these groups have access.
    type: dict
    default: {}
  users:
    description: User name to access level; exactly these users (besides the owner) have access.
    type: dict
    default: {}
  settings:
    description: Project options to set, for example C({pull_requests: true, "Web-hooks": "https://zuul/..."}).
    type: dict
    default: {}
  timeout:
    description: Seconds to wait for the worker to create a new project's repositories.
    type: int
    default: 120
notes:
  - Supports check mode and diff mode.
"""

EXAMPLES = r"""
- name: Host devinfra/devinfra, its cores committing
  pagure_project:
    name: devinfra/devinfra
    owner: admin
    description: The platform's infrastructure as code
    groups: {infra-core: commit}
    users: {zuul: commit}
    settings:
      pull_requests: true
      Web-hooks: https://zuul01/api/connection/pagure/payload
  become: true
  become_user: _pagure
"""

RETURN = r"""
changes:
  description: What changed (or would change in check mode), one line each.
  returned: always
  type: list
  elements: str
  sample: ["project devinfra/devinfra: created", "group infra-core: commit"]
"""

LEVELS = ("admin", "commit", "collaborator", "ticket")


def current_access(project, kind):
    """{name: level} of the project's groups (kind 'groups') or users (kind 'users'), the owner left out."""
    levels = project.access_groups_json if kind == "groups" else project.access_users_json
    return {who: level for level in LEVELS for who in levels.get(level, [])}


def main():
    module = AnsibleModule(
        argument_spec=dict(
            PAGURE_DB_ARGUMENT_SPEC,
            name=dict(type="str", required=True),
            owner=dict(type="str", required=True),
            description=dict(type="str", default=""),
            default_branch=dict(type="str", default="master"),
            groups=dict(type="dict", default={}),
            users=dict(type="dict", default={}),
            settings=dict(type="dict", default={}),
            timeout=dict(type="int", default=120),
        ),
        supports_check_mode=True,
    )
    p = module.params
    namespace, _, name = p["name"].rpartition("/")
    namespace = namespace or None
    bad = [
        f"{kind} {who}: access {level!r} is not one of {', '.join(LEVELS)}"
        for kind in ("groups", "users")
        for who, level in p[kind].items()
        if level not in LEVELS
    ]
    if bad:
        module.fail_json(msg=f"project {p['name']}: " + "; ".join(bad))
    changes = []
    try:
        pagure, config, session = open_pagure(p["config"])
        query = pagure.lib.query
        missing = [f"group {g}" for g in p["groups"] if query.search_groups(session, group_name=g) is None]
        missing += [
            f"user {u}"
            for u in list(p["users"]) + [p["owner"]]
            if query.search_user(session, username=u) is None
        ]
        if missing:
            module.fail_json(msg=f"project {p['name']}: unknown {', '.join(missing)}")
        unknown = sorted(set(p["settings"]) - set(pagure.lib.model.Project().settings))
        if unknown:
            module.fail_json(msg=f"project {p['name']}: unknown setting(s) {', '.join(unknown)}")
        project = query._get_project(session, name, namespace=namespace)
        if project is None:
            changes.append(f"project {p['name']}: created")
            if module.check_mode:
                module.exit_json(
                    changed=True, changes=changes, diff={"before": "", "after": p["name"] + "\n"}
                )
            task = query.new_project(
                session,
                user=p["owner"],
                name=name,
                namespace=namespace,
                blacklist=config["BLACKLISTED_PROJECTS"],
                allowed_prefix=config.get("ALLOWED_PREFIX", []),
                repospanner_region="none",
                description=p["description"] or None,
                default_branch=p["default_branch"],
            )
            task.get(timeout=p["timeout"])
            session.expire_all()
            project = query._get_project(session, name, namespace=namespace)
        if (project.description or "") != p["description"]:
            changes.append(f"project {p['name']}: description")
            project.description = p["description"] or None
        settings = project.settings
        wanted = dict(settings, **p["settings"])
        if wanted != settings:
            changes += [
                f"setting {k}: {settings.get(k)!r} -> {v!r}"
                for k, v in p["settings"].items()
                if settings.get(k) != v
            ]
            project.settings = wanted
        for kind in ("groups", "users"):
            have = current_access(project, kind)
            for who, level in sorted(p[kind].items()):
                if have.get(who) != level:
                    changes.append(f"{kind[:-1]} {who}: {have.get(who) or 'none'} -> {level}")
                    if module.check_mode:
                        continue
                    if kind == "groups":
                        query.add_group_to_project(
                            session, project, who, p["owner"], access=level, is_admin=True
                        )
                    else:
                        query.add_user_to_project(session, project, who, p["owner"], access=level)
            for who in sorted(set(have) - set(p[kind])):
                changes.append(f"{kind[:-1]} {who}: {have[who]} -> none")
                if module.check_mode:
                    continue
                if kind == "groups":
                    group = query.search_groups(session, group_name=who)
                    session.query(pagure.lib.model.ProjectGroup).filter_by(
                        project_id=project.id, group_id=group.id
                    ).delete()
                else:
                    query.remove_user_of_project(
                        session, query.search_user(session, username=who), project, p["owner"]
                    )
        if module.check_mode:
            session.rollback()
        else:
            session.add(project)
            session.commit()
    except PagureHostError as exc:
        module.fail_json(msg=str(exc), changed=False)
    except Exception as exc:  # Pagure's own errors, a worker that never answers
        module.fail_json(msg=f"project {p['name']}: Pagure refused the change: {exc}", changed=bool(changes))
    module.exit_json(
        changed=bool(changes),
        changes=changes,
        diff={"before": "", "after": "".join(f"{line}\n" for line in changes)},
    )


if __name__ == "__main__":
    main()
