"""A CONTRACT DOUBLE of Gerrit's REST API: the documented endpoints the gerrit_* modules use.

This is not Gerrit and behaves like Gerrit only as far as the REST
documentation (https://gerrit-review.googlesource.com/Documentation/rest-api.html)
describes it. It keeps projects, groups and accounts in memory and answers,
on 127.0.0.1, these authenticated endpoints (``{project}`` and ``{group}`` are
single URL-encoded path segments: ``infra%2Fconfig``)::

    GET  /a/projects/{project}               ProjectInfo
    PUT  /a/projects/{project}               create (ProjectInput) -> 201 ProjectInfo, 409 if it exists
    PUT  /a/projects/{project}/description   ProjectDescriptionInput -> 200 "text", 204 when emptied
    PUT  /a/projects/{project}/parent        ProjectParentInput -> 200 "parent"
    GET  /a/projects/{project}/config        ConfigInfo
    PUT  /a/projects/{project}/config        ConfigInput -> ConfigInfo
    GET  /a/projects/{project}/access        ProjectAccessInfo
    POST /a/projects/{project}/access        ProjectAccessInput (removals first) -> ProjectAccessInfo
    GET  /a/accounts/{account}               AccountInfo ({account}: ID, username, email, full name...)
    GET  /a/groups/{group}                   GroupInfo ({group}: UUID, numeric ID or name)
    PUT  /a/groups/{group}                   create (GroupInput) -> 201 GroupInfo, 409 if it exists
    GET  /a/groups/{group}/detail            GroupInfo with members and includes
    PUT  /a/groups/{group}/description       {"description"} -> 200 "text", 204 when emptied
    PUT  /a/groups/{group}/options           GroupOptionsInput -> GroupOptionsInfo
    PUT  /a/groups/{group}/owner             {"owner"} -> GroupInfo of the owner
    POST /a/groups/{group}/members.add       MembersInput -> [AccountInfo]
    POST /a/groups/{group}/members.delete    MembersInput -> 204

Every JSON answer starts with Gerrit's ``)]}'`` line; errors are plain text.
Requests under ``/a/`` need HTTP basic auth with an account's username and
HTTP password (else 401); the double serves nothing outside ``/a/`` (404).
Writes need Gerrit's rights (403 otherwise): the Create Project, Create Group
and Administrate Server capabilities, project and group ownership.
``fail()`` injects HTTP errors (tests/loopback_http.py's FaultInjection, with GerritFault's
``carried_out`` and ``effect``) and ``requests`` logs every request answered.
README.md in this directory says what is and is not checked.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import Message
from http.server import ThreadingHTTPServer
from urllib.parse import quote_plus, unquote_plus, urlsplit

from tests.loopback_http import Fault, FaultInjection, LoopbackService

XSSI_PREFIX = b")]}'\n"
ALL_PROJECTS = "All-Projects"
GLOBAL = "GLOBAL_CAPABILITIES"
STATES = ("ACTIVE", "READ_ONLY", "HIDDEN")
SUBMIT_TYPES = ("INHERIT", "MERGE_IF_NECESSARY", "FAST_FORWARD_ONLY", "REBASE_IF_NECESSARY", "REBASE_ALWAYS",
                "MERGE_ALWAYS", "CHERRY_PICK")
ACTIONS = ("ALLOW", "DENY", "BLOCK", "INTERACTIVE", "BATCH")
SYSTEM_GROUPS = {"global:Anonymous-Users": "Anonymous Users", "global:Registered-Users": "Registered Users",
                 "global:Project-Owners": "Project Owners", "global:Change-Owner": "Change Owner"}
# Gerrit's core ref permissions and global capabilities (access-control.html); labels are matched apart.
PERMISSIONS = {"abandon", "addPatchSet", "create", "createSignedTag", "createTag", "delete", "deleteChanges",
               "deleteOwnChanges", "editHashtags", "editTopicName", "forgeAuthor", "forgeCommitter",
               "forgeServerAsCommitter", "owner", "push", "pushMerge", "read", "rebase", "removeReviewer",
               "revert", "submit", "submitAs", "toggleWipState", "viewPrivateChanges"}
LABEL_PERMISSION = re.compile(r"(label|labelAs|removeLabel)-[A-Za-z0-9-]+")
CAPABILITIES = {"accessDatabase", "administrateServer", "batchChangesLimit", "createAccount", "createGroup",
                "createProject", "emailReviewers", "flushCaches", "killTask", "maintainServer",
                "modifyAccount", "priority", "queryLimit", "readAs", "runAs", "runGC", "streamEvents",
                "viewAccess", "viewAllAccounts", "viewCaches", "viewConnections", "viewPlugins", "viewQueue",
                "viewSecondaryEmails"}
# Permissions and capabilities whose rules carry a range (Permission.hasRange, GlobalCapability.hasRange):
# Gerrit drops min and max from the rules of all others when it saves them.
RANGED_CAPABILITIES = {"queryLimit", "batchChangesLimit"}
# Characters Gerrit refuses in project names.
UNREASONABLE = re.compile(r"^/|/$|^\.\.?/|/\.\.?/|//|\.git/|[\\?%*:<>|$\r~]|/\+")


class GerritHTTPError(Exception):
    """An error answer: HTTP ``status`` with Gerrit-like plain ``text``."""

    def __init__(self, status: int, text: str):
        super().__init__(text)
        self.status, self.text = status, text


@dataclass(frozen=True)
class LoggedRequest:
    method: str
    path: str  # as sent, still URL-encoded
    query: str
    status: int
    body: object  # the decoded JSON body, None if there was none


@dataclass
class GerritFault(Fault):
    """A Fault (tests/loopback_http.py) that may first do something: with ``carried_out`` the request is
    carried out, then answered with ``status`` (as when a proxy times out on a Gerrit that finished the
    work); ``effect`` is called when the fault fires (another client's change)."""

    carried_out: bool = False
    effect: Callable[[], None] | None = None


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.000000000")


def _uuid(*parts: object) -> str:
    """A group UUID like Gerrit's (40 hex digits), the same on every run for the same parts."""
    return hashlib.sha1("/".join(map(str, parts)).encode(), usedforsecurity=False).hexdigest()


def url_encode(value: str) -> str:
    """Gerrit's Url.encode (Java's URLEncoder, form encoding): a space is '+', '*' stays, '~' is encoded.

    GroupInfo.id, GroupInfo.owner_id and ProjectInfo.id are encoded this way.
    """
    return quote_plus(value, safe="*").replace("~", "%7E")


def _ranged(ref: str, permission: str) -> bool:
    """Whether Gerrit keeps min and max on the rules of ``permission`` in section ``ref``."""
    if ref == GLOBAL:
        return permission in RANGED_CAPABILITIES
    return bool(LABEL_PERMISSION.fullmatch(permission))


def _body(data: object) -> dict:
    """The JSON input as a dict; a request without a body is an empty input."""
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise GerritHTTPError(400, "Expected JSON object")
    return data


_ROUTES: list[tuple[str, re.Pattern, str]] = []


def route(method: str, pattern: str):
    """Register a handler for ``method`` on ``/a/<pattern>``; named groups are URL-decoded arguments."""
    def register(func):
        _ROUTES.append((method, re.compile(pattern), func.__name__))
        return func
    return register


class GerritDouble(FaultInjection, LoopbackService):
    """The double: an HTTP server on 127.0.0.1 and the projects, groups and accounts it serves.

    Use as a context manager (``with GerritDouble() as gerrit:``) or call
    ``start()`` and ``stop()``. It starts with ``All-Projects`` and ``All-Users``,
    the groups ``Administrators`` (the admin account is its member) and
    ``Non-Interactive Users``, the system groups (``Anonymous Users``,
    ``Registered Users``, ``Project Owners``, ``Change Owner``) and the account
    ``username`` (ID 1000000, ``<username>@example.org``), whose HTTP password
    is ``password``. That account is a member of ``Administrators``, which has
    the Administrate Server capability on ``All-Projects``: it may do
    everything. Other accounts (``add_account(..., http_password=...)``) have
    only the rights granted to their groups.
    """

    fault_class = GerritFault

    def __init__(self, username: str = "admin", password: str = "secret", port: int = 0):
        super().__init__()
        self.username, self.password, self.port = username, password, port
        self.url = ""
        self.requests: list[LoggedRequest] = []
        self.accounts: dict[int, dict] = {}
        self.secondary_emails: dict[int, list[str]] = {}
        self.http_passwords: dict[int, str] = {}
        self.groups: dict[str, dict] = {}  # internal groups by UUID
        self.external_groups: dict[str, str] = {}  # external groups (e.g. LDAP): UUID -> name
        self.projects: dict[str, dict] = {}
        self._lock = threading.RLock()
        self._httpd: ThreadingHTTPServer | None = None
        self._caller: int | None = None  # the account of the request being answered
        self.admin_id = self.add_account(username, name="Administrator", http_password=password)
        admins = self.add_group("Administrators", description="Gerrit Site Administrators",
                                members=[self.admin_id])
        self.add_group("Non-Interactive Users", description="Users who perform batch actions on Gerrit",
                       owner=admins)
        self.projects[ALL_PROJECTS] = {
            "name": ALL_PROJECTS, "parent": None, "description": "Access inherited by all other projects.",
            "state": "ACTIVE", "submit_type": "MERGE_IF_NECESSARY",
            "access": {GLOBAL: {"administrateServer": {"exclusive": False,
                                                       "rules": {admins: {"action": "ALLOW"}}}},
                       "refs/*": {"read": {"exclusive": False,
                                           "rules": {"global:Anonymous-Users": {"action": "ALLOW"}}}},
                       "refs/heads/*": {"label-Code-Review": {
                           "exclusive": False,
                           "rules": {"global:Registered-Users": {"action": "ALLOW", "min": -1, "max": 1}}}}}}
        self.add_project("All-Users", description="Individual user settings and preferences.")

    # -- lifecycle ---------------------------------------------------------

    thread_name = "gerrit-double"

    def respond(self, method: str, target: str, headers: Message, raw: bytes) -> tuple[int, bytes, dict]:
        return self.handle(method, target, headers, raw)

    # -- seeding, inspection and injection -----------------------------------

    def add_account(self, username: str, email: str | None = None, name: str | None = None,
                    http_password: str | None = None, secondary_emails: Iterable[str] = ()) -> int:
        """Add an active account; return its numeric ID. Without ``http_password`` it cannot log in."""
        with self._lock:
            account_id = 1000000 + len(self.accounts)
            self.accounts[account_id] = {"_account_id": account_id, "name": name or username,
                                         "email": email or f"{username}@example.org", "username": username}
            self.secondary_emails[account_id] = list(secondary_emails)
            if http_password is not None:
                self.http_passwords[account_id] = http_password
            return account_id

    def add_external_group(self, uuid: str, name: str) -> str:
        """Add a group of another backend (e.g. ``ldap:cn=Infra Team,ou=groups``): no members, no owner."""
        with self._lock:
            self.external_groups[uuid] = name
            return uuid

    def grant(self, project: str, ref: str, permission: str, group: str, **rule: object) -> None:
        """Add an ALLOW rule (or ``action=...``) for the group UUID ``group`` to ``project``'s access."""
        with self._lock:
            section = self.projects[project]["access"].setdefault(ref, {})
            section.setdefault(permission, {"exclusive": False, "rules": {}})["rules"][group] = \
                {"action": "ALLOW", **rule}

    def add_group(self, name: str, description: str = "", owner: str | None = None,
                  members: Iterable[int] = (), visible_to_all: bool = False) -> str:
        """Add an internal group (self-owned unless ``owner``, a UUID, is given); return its UUID."""
        with self._lock:
            uuid = _uuid("group", name)
            self.groups[uuid] = {"uuid": uuid, "name": name, "description": description,
                                 "owner": owner or uuid, "visible_to_all": visible_to_all,
                                 "members": list(members), "group_id": len(self.groups) + 1,
                                 "created_on": _now()}
            return uuid

    def add_project(self, name: str, parent: str = ALL_PROJECTS, description: str = "", state: str = "ACTIVE",
                    access: dict | None = None) -> None:
        """Add a project; ``access`` is {ref: {permission: {"exclusive": bool, "rules": {UUID: rule}}}}."""
        with self._lock:
            self.projects[name] = {"name": name, "parent": parent, "description": description, "state": state,
                                   "submit_type": "INHERIT", "access": access or {}}

    def group(self, name: str) -> dict | None:
        """The internal group named ``name`` (its record: members are account IDs), or None."""
        with self._lock:
            return next((g for g in self.groups.values() if g["name"] == name), None)

    def count(self, path: str = "", method: str | None = None) -> int:
        """How many requests were answered whose path contains ``path``."""
        with self._lock:
            return sum(1 for r in self.requests if path in r.path and method in (None, r.method))

    def writes(self) -> list[LoggedRequest]:
        """The requests that may change something (all but GET)."""
        with self._lock:
            return [r for r in self.requests if r.method != "GET"]

    # -- request handling --------------------------------------------------

    def handle(self, method: str, target: str, headers: Message, raw: bytes) -> tuple[int, bytes, dict]:
        """Answer one request: (status, body, headers)."""
        url = urlsplit(target)
        body = None
        try:
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                raise GerritHTTPError(400, "Invalid JSON in request body") from None
            status, value = self._answer(method, url.path, headers, body)
            data = b"" if status == 204 else XSSI_PREFIX + json.dumps(value, indent=2).encode()
            reply = {"Content-Type": "application/json; charset=UTF-8"} if data else {}
        except GerritHTTPError as exc:
            status, data = exc.status, f"{exc.text}\n".encode()
            reply = {"Content-Type": "text/plain; charset=UTF-8"}
            if status == 401:
                reply["WWW-Authenticate"] = 'Basic realm="Gerrit Code Review"'
        except Exception as exc:  # input the double does not expect: answer, and say so
            status, data = 500, f"Internal server error (in the double): {exc!r}\n".encode()
            reply = {"Content-Type": "text/plain; charset=UTF-8"}
        with self._lock:
            self.requests.append(LoggedRequest(method, url.path, url.query, status, body))
        return status, data, reply

    def _answer(self, method: str, path: str, headers: Message, body: object) -> tuple[int, object]:
        fault = self.take_fault(method, path)
        if fault:
            if fault.effect:
                fault.effect()
            if fault.carried_out:
                with contextlib.suppress(GerritHTTPError):
                    self._dispatch(method, path, headers, body)
            raise GerritHTTPError(fault.status, f"Injected fault: HTTP {fault.status} on {method} {path}")
        return self._dispatch(method, path, headers, body)

    def _authenticate(self, headers: Message) -> int:
        """The account whose username and HTTP password the basic auth header carries; else 401."""
        scheme, _, credentials = (headers.get("Authorization") or "").partition(" ")
        try:
            username, _, password = base64.b64decode(credentials, validate=True).decode().partition(":")
        except ValueError:
            username = password = None
        for account_id, account in self.accounts.items():
            if scheme == "Basic" and account["username"] == username \
                    and self.http_passwords.get(account_id) == password:
                return account_id
        raise GerritHTTPError(401, "Unauthorized")

    def _dispatch(self, method: str, path: str, headers: Message, body: object) -> tuple[int, object]:
        if not path.startswith("/a/"):
            raise GerritHTTPError(404, "Not found (the double serves only the authenticated /a/ endpoints)")
        with self._lock:
            caller = self._authenticate(headers)
        resource = path[len("/a/"):]
        known = False
        for verb, regex, handler in _ROUTES:
            match = regex.fullmatch(resource)
            known = known or bool(match)
            if match and verb == method:
                # Gerrit decodes path segments with Url.decode (Java's URLDecoder): '+' is a space.
                args = {key: unquote_plus(value) for key, value in match.groupdict().items()}
                with self._lock:
                    self._caller = caller
                    try:
                        return getattr(self, handler)(body, **args)
                    finally:
                        self._caller = None
        if known:
            raise GerritHTTPError(405, "Method Not Allowed")
        raise GerritHTTPError(404, "Not found")

    # -- rights --------------------------------------------------------------

    def _caller_groups(self) -> set[str]:
        """The UUIDs of the groups the caller is in (directly: the double has no subgroups)."""
        groups = {"global:Anonymous-Users", "global:Registered-Users"}
        return groups | {uuid for uuid, group in self.groups.items() if self._caller in group["members"]}

    def _allowed(self, project: str, ref: str, permission: str) -> bool:
        """Whether ``permission`` on ``ref`` (exactly that section) of ``project`` or one of its parents
        has an ALLOW rule for one of the caller's groups and no BLOCK rule for them."""
        groups, allowed = self._caller_groups(), False
        name = project
        while name:
            rules = self.projects[name]["access"].get(ref, {}).get(permission, {}).get("rules", {})
            for uuid, rule in rules.items():
                if uuid in groups and rule.get("action", "ALLOW") == "BLOCK":
                    return False
                allowed = allowed or (uuid in groups and rule.get("action", "ALLOW") == "ALLOW")
            name = self.projects[name]["parent"]
        return allowed

    def _is_admin(self) -> bool:
        return self._allowed(ALL_PROJECTS, GLOBAL, "administrateServer")

    def _require_capability(self, capability: str, text: str) -> None:
        """The caller needs ``capability`` on All-Projects (Administrate Server implies it)."""
        if not (self._is_admin() or self._allowed(ALL_PROJECTS, GLOBAL, capability)):
            raise GerritHTTPError(403, f"{text} not permitted")

    def _require_project_owner(self, name: str) -> None:
        """Owner of a project: the Owner permission on refs/* (inherited too), or Administrate Server."""
        if not (self._is_admin() or self._allowed(name, "refs/*", "owner")):
            raise GerritHTTPError(403, "write refs/meta/config not permitted")

    def _require_group_owner(self, group: dict, text: str = "Not group owner") -> None:
        """Owner of a group: a member of its owner group, or Administrate Server."""
        if not (self._is_admin() or group["owner"] in self._caller_groups()):
            raise GerritHTTPError(403, text)

    # -- projects ------------------------------------------------------------

    def _project(self, name: str) -> dict:
        if name not in self.projects:
            raise GerritHTTPError(404, f"Not found: {name}")
        return self.projects[name]

    @staticmethod
    def _writable(project: dict) -> None:
        if project["state"] != "ACTIVE":
            raise GerritHTTPError(409, f"project state {project['state']} does not permit write")

    def _project_info(self, project: dict) -> dict:
        info = {"id": url_encode(project["name"]), "name": project["name"], "state": project["state"]}
        if project["parent"]:
            info["parent"] = project["parent"]
        if project["description"]:
            info["description"] = project["description"]
        return info

    @route("GET", r"projects/(?P<name>[^/]+)")
    def _get_project(self, body, name):
        return 200, self._project_info(self._project(name))

    @route("PUT", r"projects/(?P<name>[^/]+)")
    def _create_project(self, body, name):
        self._require_capability("createProject", "create project")
        data = _body(body)
        name = name.removesuffix(".git")  # "If name ends with .git the suffix will be automatically removed."
        if data.get("name") is not None and data["name"].removesuffix(".git") != name:
            raise GerritHTTPError(400, "name must match URL")
        if not name or UNREASONABLE.search(name):
            raise GerritHTTPError(400, f"invalid project name: {name}")
        if name in self.projects:
            raise GerritHTTPError(409, "Project already exists")
        parent = data.get("parent") or ALL_PROJECTS
        if parent not in self.projects:
            raise GerritHTTPError(422, f"Parent project \"{parent}\" not found")
        submit_type = data.get("submit_type") or "INHERIT"
        if submit_type not in SUBMIT_TYPES:
            raise GerritHTTPError(400, f"invalid submit type: {submit_type}")
        self.add_project(name, parent, data.get("description") or "")
        self.projects[name]["submit_type"] = submit_type
        return 201, self._project_info(self.projects[name])

    @route("PUT", r"projects/(?P<name>[^/]+)/description")
    def _set_project_description(self, body, name):
        project = self._project(name)
        self._require_project_owner(name)
        self._writable(project)
        project["description"] = _body(body).get("description") or ""
        return (200, project["description"]) if project["description"] else (204, None)

    @route("PUT", r"projects/(?P<name>[^/]+)/parent")
    def _set_project_parent(self, body, name):
        project = self._project(name)
        # Gerrit's SetParent: only administrators (unless receive.allowProjectOwnersToChangeParent).
        self._require_capability("administrateServer", "administrate server")
        self._writable(project)
        parent = _body(body).get("parent") or ALL_PROJECTS
        if name == ALL_PROJECTS:
            raise GerritHTTPError(400, f"cannot set parent of {ALL_PROJECTS}")
        if parent not in self.projects:
            raise GerritHTTPError(422, f"parent project {parent} not found")
        ancestor = parent
        while ancestor:
            if ancestor == name:
                raise GerritHTTPError(409, f"cycle exists between {name} and {parent}")
            ancestor = self.projects[ancestor]["parent"]
        project["parent"] = parent
        return 200, parent

    def _config_info(self, project: dict) -> dict:
        parent = project["parent"]
        inherited = self._effective_submit_type(parent) if parent else "MERGE_IF_NECESSARY"
        effective = self._effective_submit_type(project["name"])
        info = {"submit_type": effective, "default_submit_type": {
            "value": effective, "configured_value": project["submit_type"], "inherited_value": inherited}}
        if project["description"]:
            info["description"] = project["description"]
        if project["state"] != "ACTIVE":  # "Not set if the project state is ACTIVE."
            info["state"] = project["state"]
        return info

    def _effective_submit_type(self, name: str) -> str:
        project = self.projects[name]
        if project["submit_type"] != "INHERIT" or not project["parent"]:
            return project["submit_type"]
        return self._effective_submit_type(project["parent"])

    @route("GET", r"projects/(?P<name>[^/]+)/config")
    def _get_config(self, body, name):
        return 200, self._config_info(self._project(name))

    @route("PUT", r"projects/(?P<name>[^/]+)/config")
    def _set_config(self, body, name):
        project = self._project(name)
        self._require_project_owner(name)
        data = _body(body)
        state, submit_type = data.get("state"), data.get("submit_type")
        if state is not None and state not in STATES:
            raise GerritHTTPError(400, f"invalid project state: {state}")
        if submit_type is not None and submit_type not in SUBMIT_TYPES:
            raise GerritHTTPError(400, f"invalid submit type: {submit_type}")
        # ConfigInput: "If not set, the description is removed"; unset state and submit type are kept.
        project["description"] = data.get("description") or ""
        project["state"] = state or project["state"]
        project["submit_type"] = submit_type or project["submit_type"]
        return 200, self._config_info(project)

    def _access_info(self, project: dict) -> dict:
        local = {ref: {"permissions": {
            name: {**({"label": name.split("-", 1)[1]} if LABEL_PERMISSION.fullmatch(name) else {}),
                   **({"exclusive": True} if permission["exclusive"] else {}),
                   "rules": {uuid: self._rule_info(rule) for uuid, rule in permission["rules"].items()}}
            for name, permission in section.items()}} for ref, section in project["access"].items()}
        uuids = {uuid for section in project["access"].values() for p in section.values()
                 for uuid in p["rules"]}
        info = {"revision": _uuid("revision", json.dumps(project["access"], sort_keys=True)), "local": local,
                "is_owner": True, "owner_of": sorted(local), "can_upload": True, "can_add": True,
                "config_visible": True,
                "groups": {uuid: self._group_info(uuid, with_id=False) for uuid in uuids}}
        if project["parent"]:
            info["inherits_from"] = self._project_info(self.projects[project["parent"]])
        return info

    @staticmethod
    def _rule_info(rule: dict) -> dict:
        info = {"action": rule["action"], "force": rule.get("force", False)}
        if rule.get("min") or rule.get("max"):  # a 0..0 range is no range
            info.update(min=rule.get("min", 0), max=rule.get("max", 0))
        return info

    @route("GET", r"projects/(?P<name>[^/]+)/access")
    def _get_access(self, body, name):
        return 200, self._access_info(self._project(name))

    @route("POST", r"projects/(?P<name>[^/]+)/access")
    def _set_access(self, body, name):
        project = self._project(name)
        data = _body(body)
        self._require_project_owner(name)
        removals = self._access_sections(data.get("remove"))
        additions = self._access_sections(data.get("add"))
        for ref in {**removals, **additions}:
            if ref == GLOBAL and name != ALL_PROJECTS:
                raise GerritHTTPError(400, "Cannot edit global capabilities for projects other than "
                                           f"{ALL_PROJECTS}")
            if ref == GLOBAL:
                self._require_capability("administrateServer", "administrate server")
        for ref, section in additions.items():
            if ref != GLOBAL and not ref.startswith(("refs/", "^refs/")):
                raise GerritHTTPError(400, "invalid section name")
            for permission in section:
                known = CAPABILITIES if ref == GLOBAL else PERMISSIONS
                if permission not in known and not (ref != GLOBAL and LABEL_PERMISSION.fullmatch(permission)):
                    kind = "global capability" if ref == GLOBAL else "permission"
                    raise GerritHTTPError(400, f"Unknown {kind}: {permission}")
        access = project["access"]
        # "The backend will remove the entity with the finest granularity in the request."
        for ref, section in removals.items():
            if not section:
                access.pop(ref, None)
            for permission, wanted in section.items():
                current = access.get(ref, {}).get(permission)
                if current is None:
                    continue
                if not wanted["rules"]:
                    del access[ref][permission]
                for uuid in wanted["rules"]:
                    current["rules"].pop(uuid, None)
        # "...access sections and permissions will be cleaned up ... by removing items that have no
        # child elements."
        for ref in list(access):
            access[ref] = {name: p for name, p in access[ref].items() if p["rules"]}
            if not access[ref]:
                del access[ref]
        # "After removals have been applied, additions will be applied." Rules join existing permissions.
        for ref, section in additions.items():
            for permission, wanted in section.items():
                current = access.setdefault(ref, {}).get(permission)
                if current is None:
                    access[ref][permission] = wanted
                else:
                    current["rules"].update(wanted["rules"])
        return 200, self._access_info(project)

    def _access_sections(self, sections: object) -> dict:
        """AccessSectionInfo entries as stored; as in Gerrit, entries without permissions or rules
        are skipped."""
        parsed = {}
        for ref, section in (sections or {}).items():
            if section.get("permissions") is None:
                continue
            parsed[ref] = {}
            for name, permission in section["permissions"].items():
                if permission.get("rules") is None:
                    continue
                rules = {}
                for group_id, rule in permission["rules"].items():
                    uuid = self._find_group(group_id)
                    if uuid is None:
                        raise GerritHTTPError(422, f"{group_id} is not a valid group ID")
                    rule = rule or {}
                    if rule.get("action", "ALLOW") not in ACTIONS:
                        raise GerritHTTPError(400, f"invalid action: {rule['action']}")
                    # ProjectConfig saves a range only where it has a meaning (PermissionRule.asString).
                    ranged = _ranged(ref, name)
                    rules[uuid] = {"action": rule.get("action", "ALLOW"), "force": bool(rule.get("force")),
                                   "min": rule.get("min", 0) if ranged else 0,
                                   "max": rule.get("max", 0) if ranged else 0}
                # Capabilities are saved without `exclusive`, and Permission.getExclusiveGroup() is false
                # for `owner`: Gerrit drops the flag there.
                exclusive = bool(permission.get("exclusive")) and ref != GLOBAL and name != "owner"
                parsed[ref][name] = {"exclusive": exclusive, "rules": rules}
        return parsed

    # -- groups and accounts ---------------------------------------------------

    def _find_group(self, group_id: str) -> str | None:
        """The UUID of the group with this UUID, numeric ID or name ({group-id}), or None.

        As Gerrit's GroupResolver does, a name matches whatever its case (GroupBackends.isExactSuggestion).
        """
        if group_id in self.groups or group_id in SYSTEM_GROUPS or group_id in self.external_groups:
            return group_id
        for uuid, group in self.groups.items():
            if group_id == str(group["group_id"]) or group_id.lower() == group["name"].lower():
                return uuid
        names = {**SYSTEM_GROUPS, **self.external_groups}
        return next((uuid for uuid, name in names.items() if name.lower() == group_id.lower()), None)

    def _group_name(self, uuid: str) -> str:
        if uuid in self.groups:
            return self.groups[uuid]["name"]
        return SYSTEM_GROUPS.get(uuid) or self.external_groups[uuid]

    def _internal_group(self, group_id: str) -> dict:
        uuid = self._find_group(group_id)
        if uuid is None:
            raise GerritHTTPError(404, f"Not found: {group_id}")
        if uuid not in self.groups:  # NotInternalGroupException
            raise GerritHTTPError(405, f"Not an internal group: {group_id}")
        return self.groups[uuid]

    def _group_info(self, uuid: str, with_id: bool = True, detail: bool = False) -> dict:
        """GroupInfo as GroupJson makes it: ``id`` and ``owner_id`` form-encoded (Url.encode); a system or
        external group has only id, name and options, also in ``detail`` (no owner, no members)."""
        info = {"id": url_encode(uuid)} if with_id else {}
        if uuid not in self.groups:
            return {**info, "name": self._group_name(uuid), "options": {}}
        group = self.groups[uuid]
        info.update(name=group["name"], url=f"#/admin/groups/uuid-{uuid}",
                    options={"visible_to_all": True} if group["visible_to_all"] else {},
                    group_id=group["group_id"], owner=self._group_name(group["owner"]),
                    owner_id=url_encode(group["owner"]), created_on=group["created_on"])
        if group["description"]:
            info["description"] = group["description"]
        if detail:
            info.update(members=[self.accounts[a] for a in sorted(group["members"])], includes=[])
        return info

    def _account(self, account_id: str) -> dict:
        """The account this {account-id} names, as Gerrit's AccountResolver finds it: ``self``, a numeric
        ID, a username, ``Full Name <email>``, an email address (preferred or secondary), or a full name
        that names one account. 422 if there is none or more than one."""
        if account_id in ("self", "me"):
            return self.accounts[self._caller]
        bracketed = re.fullmatch(r".*<([^<>]+)>", account_id)
        email = (bracketed.group(1) if bracketed else account_id).lower()
        for account in self.accounts.values():
            emails = [account["email"], *self.secondary_emails[account["_account_id"]]]
            if account_id in (str(account["_account_id"]), account["username"]) \
                    or email in (e.lower() for e in emails):
                return account
        named = [a for a in self.accounts.values() if a["name"] == account_id]
        if len(named) > 1:
            raise GerritHTTPError(422, f"Account '{account_id}' is ambiguous")
        if named:
            return named[0]
        raise GerritHTTPError(422, f"Account '{account_id}' not found")

    @route("GET", r"accounts/(?P<account_id>[^/]+)")
    def _get_account(self, body, account_id):
        try:
            return 200, self._account(account_id)
        except GerritHTTPError as exc:
            raise GerritHTTPError(404, f"Not found: {account_id}") from exc

    @route("GET", r"groups/(?P<group_id>[^/]+)")
    def _get_group(self, body, group_id):
        uuid = self._find_group(group_id)
        if uuid is None:
            raise GerritHTTPError(404, f"Not found: {group_id}")
        return 200, self._group_info(uuid)

    @route("GET", r"groups/(?P<group_id>[^/]+)/detail")
    def _get_group_detail(self, body, group_id):
        uuid = self._find_group(group_id)
        if uuid is None:
            raise GerritHTTPError(404, f"Not found: {group_id}")
        return 200, self._group_info(uuid, detail=True)

    @route("PUT", r"groups/(?P<name>[^/]+)")
    def _create_group(self, body, name):
        data = _body(body)
        if self._find_group(name):  # the URL names an existing group: Gerrit's PutGroup
            raise GerritHTTPError(409, "Group already exists")
        self._require_capability("createGroup", "create group")
        if data.get("name") is not None and data["name"] != name:
            raise GerritHTTPError(400, "name must match URL")
        name = name.strip()
        if not name:
            raise GerritHTTPError(400, "group name is required")
        if self._find_group(name):
            raise GerritHTTPError(409, f"group '{name}' already exists")
        owner = None
        if data.get("owner_id"):
            # CreateGroup: groups.parseInternal(Url.decode(owner_id)).
            owner_id = unquote_plus(data["owner_id"])
            owner = self._find_group(owner_id)
            if owner is None:
                raise GerritHTTPError(422, f"Group Not Found: {owner_id}")
            if owner not in self.groups:
                raise GerritHTTPError(422, f"External Group Not Allowed: {owner_id}")
        # Without members, a group without owner gets the caller as member (Gerrit's CreateGroup does this).
        members = [self._account(m)["_account_id"] for m in data.get("members") or []]
        if not members and owner is None:
            members = [self._caller]
        uuid = self.add_group(name, data.get("description") or "", owner, sorted(set(members)),
                              bool(data.get("visible_to_all")))
        return 201, self._group_info(uuid)

    @route("PUT", r"groups/(?P<group_id>[^/]+)/description")
    def _set_group_description(self, body, group_id):
        group = self._internal_group(group_id)
        self._require_group_owner(group)
        group["description"] = _body(body).get("description") or ""
        return (200, group["description"]) if group["description"] else (204, None)

    @route("PUT", r"groups/(?P<group_id>[^/]+)/options")
    def _set_group_options(self, body, group_id):
        group = self._internal_group(group_id)
        self._require_group_owner(group)
        group["visible_to_all"] = bool(_body(body).get("visible_to_all"))
        return 200, {"visible_to_all": True} if group["visible_to_all"] else {}

    @route("PUT", r"groups/(?P<group_id>[^/]+)/owner")
    def _set_group_owner(self, body, group_id):
        group = self._internal_group(group_id)
        self._require_group_owner(group)
        owner_id = _body(body).get("owner")
        if not owner_id:
            raise GerritHTTPError(400, "owner is required")
        # PutOwner: groupResolver.parse(owner), so any group may own one, a system or external one too.
        owner = self._find_group(owner_id)
        if owner is None:
            raise GerritHTTPError(422, f"Group Not Found: {owner_id}")
        group["owner"] = owner
        return 200, self._group_info(owner)

    def _members_input(self, body: object) -> list[dict]:
        data = _body(body)
        wanted = list(data.get("members") or []) + ([data["_one_member"]] if data.get("_one_member") else [])
        return [self._account(str(m)) for m in wanted]

    @route("POST", r"groups/(?P<group_id>[^/]+)/members\.add")
    def _add_members(self, body, group_id):
        group = self._internal_group(group_id)
        self._require_group_owner(group, f"Cannot add members to group {group['name']}")
        accounts = self._members_input(body)
        group["members"] = sorted(set(group["members"]) | {a["_account_id"] for a in accounts})
        # "An AccountInfo entity is returned for each user specified in the input, independently of
        # whether the user was newly added to the group or whether the user was already a member."
        return 200, accounts

    @route("POST", r"groups/(?P<group_id>[^/]+)/members\.delete")
    def _delete_members(self, body, group_id):
        group = self._internal_group(group_id)
        self._require_group_owner(group, f"Cannot delete members from group {group['name']}")
        gone = {a["_account_id"] for a in self._members_input(body)}
        group["members"] = [m for m in group["members"] if m not in gone]
        return 204, None
