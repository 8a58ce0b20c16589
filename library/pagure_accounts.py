#!/usr/bin/python
"""Ansible module pagure_accounts: see DOCUMENTATION."""

import datetime
import re

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.pagure_db import PAGURE_DB_ARGUMENT_SPEC, PagureHostError, open_pagure

DOCUMENTATION = r"""
module: pagure_accounts
short_description: Keep Pagure's local users, groups and API tokens as declared
description:
  - Runs on the Pagure host, as Pagure's service user, and uses Pagure's own library on its database
    (Pagure has no API to create users, groups, or API tokens of a chosen value).
  - Users are created or updated (full name, e-mail, password, SSH keys). Users not listed are left alone.
  - Groups are created, and their members made exactly the listed users (the first listed admin user
    creates a group Pagure needs one).
  - API tokens are written with the value given (from the private inventory) for the user, ACLs and
    project given; an expired token, or one with other ACLs, is replaced. Tokens not listed are left alone.
  - Everything is checked before anything changes; a bad entry fails the task naming the entry, with
    nothing changed.
author: devinfra
options:
  config:
    description: Pagure's configuration file.
    type: path
    default: /etc/pagure/pagure.cfg
  users:
    description: Local users.
    type: list
    elements: dict
    default: []
    suboptions:
      name: {description: Login name., type: str, required: true}
      fullname: {description: Display name (default the login name)., type: str}
      email: {description: Default e-mail address., type: str, required: true}
      password:
        description: Password for the web UI; not managed when omitted. Compared with the stored hash.
        type: str
      ssh_keys:
        description: Public SSH keys (one line each) for git over SSH; exactly these. Not managed if omitted.
        type: list
        elements: str
  groups:
    description: Groups and their exact members.
    type: list
    elements: dict
    default: []
    suboptions:
      name: {description: Group name (no spaces)., type: str, required: true}
      description: {description: One line., type: str, default: ""}
      members: {description: User names; every one must exist., type: list, elements: str, required: true}
  tokens:
    description: API tokens with a chosen value.
    type: list
    elements: dict
    default: []
    suboptions:
      value:
        description: The token, 64 characters from A-Z and 0-9.
        type: str
        required: true
        no_log: true
      user: {description: The user it authenticates., type: str, required: true}
      acls: {description: Pagure ACL names., type: list, elements: str, required: true}
      project:
        description: Limit the token to this project (namespace/name); all projects when omitted.
        type: str
      description: {description: Label shown in Pagure., type: str, default: ""}
      valid_days:
        description: Lifetime; renewed when fewer than 30 days remain (Pagure's limit is 730).
        type: int
        default: 365
  admin_user:
    description: The user recorded as creator of new groups; must be in O(users) or exist.
    type: str
    required: true
notes:
  - Supports check mode and diff mode. Token values never appear in the output.
"""

EXAMPLES = r"""
- name: Keep Pagure's accounts
  pagure_accounts:
    admin_user: admin
    users:
      - {name: admin, email: admin@example.org, password: "{{ pagure_admin_password }}"}
      - {name: zuul, email: zuul@example.org}
      - {name: alice, email: alice@example.org, ssh_keys: ["ssh-ed25519 AAAA... alice"]}
    groups:
      - {name: infra-core, members: [alice]}
    tokens:
      - value: "{{ pagure_zuul_token }}"
        user: zuul
        acls: [pull_request_merge, pull_request_flag, pull_request_comment]
  become: true
  become_user: _pagure
"""

RETURN = r"""
changes:
  description: What changed (or would change in check mode), one line each.
  returned: always
  type: list
  elements: str
  sample: ["user alice: created", "group infra-core: members + alice"]
"""

TOKEN = re.compile(r"^[A-Z0-9]{64}$")
RENEW_DAYS = 30


def check(params, known_users, known_acls):
    """Every problem with the declared entries, each naming the entry (empty when all is well)."""
    problems = []
    declared = [u["name"] for u in params["users"]]
    users = set(declared) | known_users
    for index, user in enumerate(params["users"]):
        if declared.count(user["name"]) > 1:
            problems.append(f"users[{index}] ({user['name']}): listed twice")
        if "@" not in user["email"]:
            problems.append(f"users[{index}] ({user['name']}): email {user['email']!r} is not an address")
        for key in user.get("ssh_keys") or []:
            if len(key.split()) < 2 or not key.split()[0].startswith(("ssh-", "ecdsa-", "sk-")):
                problems.append(f"users[{index}] ({user['name']}): {key[:30]!r}... is not an SSH public key")
    if params["admin_user"] not in users:
        problems.append(f"admin_user {params['admin_user']!r} is neither listed in users nor known to Pagure")
    for index, group in enumerate(params["groups"]):
        where = f"groups[{index}] ({group['name']})"
        if not group["name"] or " " in group["name"]:
            problems.append(f"{where}: a group name may not be empty or hold spaces")
        if not group["members"]:
            problems.append(f"{where}: has no members (a core group without members can approve nothing)")
        for member in group["members"]:
            if member not in users:
                problems.append(f"{where}: member {member!r} is not a user")
    for index, token in enumerate(params["tokens"]):
        where = f"tokens[{index}] (user {token['user']})"
        if not TOKEN.match(token["value"]):
            problems.append(f"{where}: the value must be 64 characters from A-Z and 0-9")
        if token["user"] not in users:
            problems.append(f"{where}: user {token['user']!r} is not a user")
        unknown = sorted(set(token["acls"]) - known_acls)
        if unknown:
            problems.append(
                f"{where}: unknown ACL(s) {', '.join(unknown)} (known: {', '.join(sorted(known_acls))})"
            )
        if not 1 <= token["valid_days"] <= 730:
            problems.append(f"{where}: valid_days must be between 1 and 730")
    return problems


def check_keys(pagure, session, params):
    """Keys Pagure would refuse: invalid, or already another user's (Pagure keeps one owner per key)."""
    problems, owners = [], {}
    replaced = {u["name"] for u in params["users"] if u.get("ssh_keys") is not None}
    for index, user in enumerate(params["users"]):
        for key in user.get("ssh_keys") or []:
            short = pagure.lib.query.is_valid_ssh_key(key)
            if not short:
                problems.append(
                    f"users[{index}] ({user['name']}): {key[:30]!r}... is not a valid SSH public key"
                )
                continue
            fingerprint = short.split()[1]
            if owners.setdefault(fingerprint, user["name"]) != user["name"]:
                problems.append(
                    f"users[{index}] ({user['name']}): key {fingerprint} is also {owners[fingerprint]}'s"
                )
            stored = session.query(pagure.lib.model.SSHKey).filter_by(ssh_search_key=fingerprint).first()
            holder = stored.user.username if stored is not None and stored.user is not None else None
            if holder and holder != user["name"] and holder not in replaced:
                problems.append(
                    f"users[{index}] ({user['name']}): key {fingerprint} belongs to {holder} in Pagure"
                )
    return problems


def sync_users(pagure, config, session, params, check_mode, changes):
    query, login = pagure.lib.query, pagure.lib.login
    for spec in params["users"]:
        name = spec["name"]
        fullname = spec.get("fullname") or name
        user = query.search_user(session, username=name)
        if user is None:
            changes.append(f"user {name}: created")
            if check_mode:
                continue
            user = query.set_up_user(session, username=name, fullname=fullname, default_email=spec["email"])
        else:
            if user.fullname != fullname:
                changes.append(f"user {name}: full name")
                user.fullname = fullname
            if user.default_email != spec["email"]:
                changes.append(f"user {name}: e-mail")
                if not check_mode:
                    query.add_email_to_user(session, user, spec["email"])
                    user.default_email = spec["email"]
        if spec.get("password") is not None and not (
            user.password and login.check_password(spec["password"], user.password)
        ):
            changes.append(f"user {name}: password")
            user.password = login.generate_hashed_value(spec["password"])
        if spec.get("ssh_keys") is not None:
            have = sorted(key.public_ssh_key.strip() for key in user.sshkeys)
            want = sorted(key.strip() for key in spec["ssh_keys"])
            if have != want:
                changes.append(f"user {name}: SSH keys ({len(have)} -> {len(want)})")
                if not check_mode:
                    for key in list(user.sshkeys):
                        session.delete(key)
                    session.flush()
                    for key in want:
                        query.add_sshkey_to_project_or_user(
                            session=session, ssh_key=key, user=user, pushaccess=True, creator=user
                        )
        if not check_mode:
            session.add(user)
            session.flush()


def sync_groups(pagure, session, params, check_mode, changes):
    query = pagure.lib.query
    for spec in params["groups"]:
        name = spec["name"]
        group = query.search_groups(session, group_name=name)
        members = set(spec["members"])
        if group is None:
            changes.append(f"group {name}: created with {', '.join(sorted(members))}")
            if check_mode:
                continue
            query.add_group(
                session, name, name, spec["description"] or None, "user", params["admin_user"], True, []
            )
            group = query.search_groups(session, group_name=name)
        elif (group.description or "") != spec["description"]:
            changes.append(f"group {name}: description")
            if not check_mode:
                group.description = spec["description"]
        have = {user.username for user in group.users}
        for member in sorted(members - have):
            changes.append(f"group {name}: members + {member}")
            if not check_mode:
                query.add_user_to_group(session, member, group, params["admin_user"], True)
        for member in sorted(have - members):
            changes.append(f"group {name}: members - {member}")
            if not check_mode:
                query.delete_user_of_group(session, member, name, params["admin_user"], True, force=True)
        if not check_mode:
            session.flush()


def _project(query, session, path):
    namespace, _, name = path.rpartition("/")
    return query._get_project(session, name, namespace=namespace or None)


def sync_tokens(pagure, session, params, check_mode, changes):
    query, model = pagure.lib.query, pagure.lib.model
    today = datetime.date.today()
    for index, spec in enumerate(params["tokens"]):
        label = f"token {index} of {spec['user']}"
        user = query.search_user(session, username=spec["user"])
        project = _project(query, session, spec["project"]) if spec.get("project") else None
        if spec.get("project") and project is None:
            raise PagureHostError(f"tokens[{index}]: project {spec['project']} does not exist")
        expires = datetime.datetime.combine(
            today + datetime.timedelta(days=spec["valid_days"]), datetime.time()
        )
        token = query.get_api_token(session, spec["value"])
        if token is None:
            changes.append(f"{label}: created")
            if check_mode:
                continue
            token = model.Token(id=spec["value"], user_id=user.id, expiration=expires)
            session.add(token)
        else:
            differ = [
                what
                for what, same in (
                    ("user", user is not None and token.user_id == user.id),
                    ("project", token.project_id == (project.id if project else None)),
                    ("ACLs", token.acls_list == sorted(spec["acls"])),
                    ("description", (token.description or "") == spec["description"]),
                    ("expiry", token.expiration.date() - today >= datetime.timedelta(days=RENEW_DAYS)),
                )
                if not same
            ]
            if not differ:
                continue
            changes.append(f"{label}: {', '.join(differ)} updated")
            if check_mode:
                continue
            token.user_id = user.id
            if "expiry" in differ:
                token.expiration = expires
        token.project_id = project.id if project else None
        token.description = spec["description"] or None
        token.acls = query.get_acls(session, restrict=spec["acls"])
        session.flush()


def main():
    user_spec = dict(
        name=dict(type="str", required=True),
        fullname=dict(type="str"),
        email=dict(type="str", required=True),
        password=dict(type="str", no_log=True),
        ssh_keys=dict(type="list", elements="str"),
    )
    group_spec = dict(
        name=dict(type="str", required=True),
        description=dict(type="str", default=""),
        members=dict(type="list", elements="str", required=True),
    )
    token_spec = dict(
        value=dict(type="str", required=True, no_log=True),
        user=dict(type="str", required=True),
        acls=dict(type="list", elements="str", required=True),
        project=dict(type="str"),
        description=dict(type="str", default=""),
        valid_days=dict(type="int", default=365),
    )
    module = AnsibleModule(
        argument_spec=dict(
            PAGURE_DB_ARGUMENT_SPEC,
            users=dict(type="list", elements="dict", default=[], options=user_spec),
            groups=dict(type="list", elements="dict", default=[], options=group_spec),
            tokens=dict(type="list", elements="dict", default=[], options=token_spec, no_log=False),
            admin_user=dict(type="str", required=True),
        ),
        supports_check_mode=True,
    )
    params = module.params
    try:
        pagure, config, session = open_pagure(params["config"])
        known_users = {u.username for u in pagure.lib.query.search_user(session)}
        known_acls = {acl.name for acl in pagure.lib.query.get_acls(session)}
        problems = check(params, known_users, known_acls) + check_keys(pagure, session, params)
        if problems:
            module.fail_json(msg="; ".join(problems), changed=False)
        changes = []
        sync_users(pagure, config, session, params, module.check_mode, changes)
        sync_groups(pagure, session, params, module.check_mode, changes)
        sync_tokens(pagure, session, params, module.check_mode, changes)
        if module.check_mode:
            session.rollback()
        else:
            session.commit()
    except PagureHostError as exc:
        module.fail_json(msg=str(exc), changed=False)
    except Exception as exc:  # Pagure's own errors (PagureException, database errors)
        module.fail_json(msg=f"Pagure refused the change: {exc}", changed=False)
    diff = {"before": "", "after": "".join(f"{line}\n" for line in changes)}
    module.exit_json(changed=bool(changes), changes=changes, diff=diff)


if __name__ == "__main__":
    main()
