"""What the gerrit_* modules in library/ share: a small client for Gerrit's REST API, the module
frame they run in (GerritModule) and the present/absent logic with check mode and diff (ensure()).

Modules import it as ``ansible.module_utils.gerrit`` (ansible.cfg's
``module_utils`` path). The client speaks the documented REST API of Gerrit 3.x:
authenticated endpoints under ``<url>/a/`` with HTTP basic auth and the
account's HTTP password, JSON bodies, answers prefixed with ``)]}'``.
Transient failures (HTTP 502, 503, 504, refused or reset connections) are
retried a bounded number of times with exponential backoff; every other
failure becomes a GerritError whose message says what was being done to
which object, the HTTP status and Gerrit's own text, and for HTTP 403 the
right the operation needs.
"""

import json
import time
from collections import namedtuple
from http import HTTPStatus
from urllib.error import HTTPError
from urllib.parse import quote, unquote_plus

from ansible.module_utils import basic
from ansible.module_utils.urls import ConnectionError as UrlsConnectionError
from ansible.module_utils.urls import open_url

# The options every gerrit_* module takes (documented in plugins/doc_fragments/gerrit.py).
GERRIT_ARGUMENT_SPEC = dict(
    url=dict(type="str", required=True),
    username=dict(type="str", required=True),
    password=dict(type="str", required=True, no_log=True),
    validate_certs=dict(type="bool", default=True),
    timeout=dict(type="int", default=30),
)

XSSI_PREFIX = ")]}'"
TRANSIENT_STATUSES = (502, 503, 504)
RETRIES = 3  # retries after the first attempt
BACKOFF = 0.5  # seconds before the first retry, doubled before each next one
# Characters Gerrit refuses in project names (its repository manager's "unreasonable name" rules).
PROJECT_NAME_FORBIDDEN = "\\?%*:<>|$~"


class GerritError(Exception):
    """A failed API call; ``status`` is the HTTP status, or None when no answer came; ``attempts`` is
    how many times the request was sent (more than 1 when transient failures were retried)."""

    def __init__(self, message, status=None, attempts=1):
        super().__init__(message)
        self.status = status
        self.attempts = attempts


def encode(name):
    """A project or group name or ID as one URL path segment ('infra/config' -> 'infra%2Fconfig')."""
    return quote(name, safe="")


def decode_id(value):
    """Gerrit's encoded IDs (GroupInfo.id, owner_id) as plain UUIDs ('global%3AX' -> 'global:X').

    Gerrit form-encodes them (Url.encode, Java's URLEncoder): a space is '+' and a '+' is '%2B', so
    'ldap%3Acn%3DInfra+Team' is 'ldap:cn=Infra Team'.
    """
    return unquote_plus(value) if value else value


def is_internal(group):
    """Whether a GroupInfo is of an internal group: Gerrit gives only those a group_id (and an owner)."""
    return "group_id" in group


def project_name_error(name, what="project name"):
    """Why Gerrit would refuse ``name`` as a project name, or None if it is acceptable."""
    if not name:
        return f"{what} must not be empty"
    problems = [
        (name.startswith("/") or name.endswith("/"), "must not start or end with '/'"),
        (".." in name, "must not contain '..'"),
        (name.endswith(".git"), "must not end in '.git' (Gerrit strips the suffix)"),
        (any(c.isspace() for c in name), "must not contain whitespace"),
        ("//" in name or "/./" in name or name.startswith("./"), "must not have empty or '.' path segments"),
        (any(c in PROJECT_NAME_FORBIDDEN for c in name), f"must not contain any of {PROJECT_NAME_FORBIDDEN}"),
        ("/+" in name, "must not contain '/+'"),
    ]
    reasons = [reason for failed, reason in problems if failed]
    return f"invalid {what} '{name}': {'; '.join(reasons)}" if reasons else None


def group_name_error(name, what="group name"):
    """Why Gerrit would refuse ``name`` as a group name, or None if it is acceptable."""
    if not name.strip():
        return f"{what} must not be empty"
    if name != name.strip():
        return f"invalid {what} '{name}': must not start or end with whitespace (Gerrit trims it)"
    if not name.isprintable():
        return f"invalid {what} {name!r}: must not contain control characters"
    return None


def created_by_retry(exc):
    """Whether a failed create is Gerrit's 409 ("already exists") to a retry: the attempt that failed
    with a transient error (a proxy's 502, say) may have created the object after all."""
    return exc.status == 409 and exc.attempts > 1


def differences(current, wanted):
    """What differs between an object and the task's values (keys of ``wanted``), for messages."""
    return ", ".join(f"{key} {current.get(key)!r} (the task: {value!r})"
                     for key, value in wanted.items() if current.get(key) != value)


def _error_text(exc):
    """The body of an HTTP error answer (Gerrit explains errors in plain text)."""
    if exc.fp is None:
        return ""
    with exc:
        return exc.read().decode("utf-8", "replace").strip()


class GerritClient:
    """Calls Gerrit's authenticated REST API at ``url`` (the site's canonical web URL)."""

    def __init__(self, url, username, password, validate_certs=True, timeout=30,
                 retries=RETRIES, backoff=BACKOFF):
        self.base = url.rstrip("/") + "/a/"
        self.username = username
        self.password = password
        self.validate_certs = validate_certs
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff

    @classmethod
    def from_module(cls, module):
        return cls(**{key: module.params[key] for key in GERRIT_ARGUMENT_SPEC})

    def call(self, method, path, doing, body=None, missing_ok=False, needs=None):
        """Send one request to ``<url>/a/<path>`` and return the decoded JSON answer (None for 204).

        ``path`` must already be encoded (see encode()). ``doing`` names the
        operation and its object for error messages, e.g. "create project
        'infra/config'"; ``needs`` the right it takes, e.g. "the Create Project
        capability", said when Gerrit answers 403. With ``missing_ok`` a 404
        returns None instead of failing.
        """
        data = None if body is None else json.dumps(body).encode("utf-8")
        headers = {"Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json; charset=UTF-8"
        attempt = 0
        while True:
            try:
                response = open_url(self.base + path, data=data, headers=headers, method=method,
                                    url_username=self.username, url_password=self.password,
                                    force_basic_auth=True, validate_certs=self.validate_certs,
                                    timeout=self.timeout, follow_redirects="none", use_netrc=False)
                with response:
                    return self._decode(response.read(), doing)
            except HTTPError as exc:
                text = _error_text(exc)
                if exc.code == 404 and missing_ok:
                    return None
                if exc.code not in TRANSIENT_STATUSES or attempt == self.retries:
                    raise GerritError(self._http_message(doing, exc.code, text, attempt, needs), exc.code,
                                      attempt + 1) from None
            except (OSError, UrlsConnectionError) as exc:  # URLError is an OSError
                # Only a refused or reset connection is surely harmless to repeat:
                # a timed-out request may have been carried out.
                reason = getattr(exc, "reason", exc)
                if not isinstance(reason, ConnectionError) or attempt == self.retries:
                    raise GerritError(f"Cannot {doing}: no answer from {self.base}: {reason}"
                                      f"{self._attempts(attempt)}", attempts=attempt + 1) from None
            time.sleep(self.backoff * 2 ** attempt)
            attempt += 1

    @staticmethod
    def _decode(raw, doing):
        text = raw.decode("utf-8", "replace").strip()
        if text.startswith(XSSI_PREFIX):
            text = text[len(XSSI_PREFIX):]
        if not text.strip():
            return None
        try:
            return json.loads(text)
        except ValueError:
            raise GerritError(f"Cannot {doing}: the answer is not JSON: {text[:200]}") from None

    def _http_message(self, doing, status, text, attempt, needs=None):
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = ""
        message = f"Cannot {doing}: HTTP {status} {phrase}".rstrip()
        if status == 401:
            message += (f": authentication failed for user '{self.username}'"
                        " (Gerrit expects the account's HTTP password, not its login password)")
        elif status == 403:
            message += f": authorization failed: user '{self.username}' is not permitted to do this"
            if needs:
                message += f"; it needs {needs}"
        if text:
            message += f": {text}"
        return message + self._attempts(attempt)

    @staticmethod
    def _attempts(attempt):
        return f" (after {attempt + 1} attempts)" if attempt else ""


class TaskError(Exception):
    """The task cannot be carried out as given: GerritModule fails it with this message (and no status)."""


# What ensure() did (in check mode: would do). ``before`` and ``after`` are the object as results show
# it, None where it does not exist; ``created`` is None for an object the module cannot create.
Outcome = namedtuple("Outcome", "before after changed created")


def ensure(read, plan, create=None, update=None, delete=None, present=True, check_mode=False, show=None):
    """Make one object present as the task wants it (or absent) and return the Outcome.

    - ``read()``: the object as it is, or None when it does not exist;
    - ``plan(current)``: ``(after, changes)``, the object as the task wants it (as results show it) and
      what must be written to get there (falsy: nothing); ``current`` None is an object still to be
      created, and ``after`` then what creating it would make;
    - ``create()``: create the object and return it as read() would;
    - ``update(current, changes)``: write plan()'s ``changes`` and return the object as results show it;
    - ``delete(current)``: delete the object;
    - ``show(obj)``: the object read() or create() returns as results show it (default: as it is).

    A new object is created, then planned and updated like an existing one. In check mode nothing is
    written: ``after`` is what plan() predicts.
    """
    show = show or (lambda obj: obj)
    current = read()
    before = None if current is None else show(current)
    created = None if create is None else present and current is None
    if not present:
        if current is not None and not check_mode:
            delete(current)
        return Outcome(before, None, current is not None, created)
    if current is None and create is None:
        raise TaskError("the object does not exist, and this module cannot create it")
    after, changes = plan(current)
    if current is None and not check_mode:
        current = create()
        after, changes = plan(current)
    if changes and not check_mode:
        after = update(current, changes)
    return Outcome(before, after, bool(created or changes), created)


class GerritModule:
    """The frame of a gerrit_* module: its AnsibleModule (its options and GERRIT_ARGUMENT_SPEC, check mode
    supported), its GerritClient, its failures (a GerritError or TaskError is fail_json with the message
    and the HTTP status, if any) and its exit (changed, created, ``result_key``, diff).

    A module subclasses it: it sets ``argument_spec`` (its own options), ``result_key``, and the names
    check() refuses before any request (``name_checks``, {option: what it names}, with ``name_error``);
    it implements read() and plan(), and create(), update() and delete() as far as Gerrit allows them
    (see ensure()). The module's main is its subclass's: ``main = GerritProject.main``.
    """

    argument_spec = {}
    result_key = None
    name_checks = {}
    name_error = None
    create = update = delete = None

    def __init__(self):
        # basic.AnsibleModule, looked up now: ansible-lint's args rule replaces it to check a task's options.
        self.module = basic.AnsibleModule(argument_spec=dict(GERRIT_ARGUMENT_SPEC, **self.argument_spec),
                                          supports_check_mode=True)
        self.params = self.module.params
        self.check_mode = self.module.check_mode
        self.warn = self.module.warn
        self.client = GerritClient.from_module(self.module)

    @classmethod
    def main(cls):
        cls().execute()

    def execute(self):
        """Check the task, run it and exit with its outcome, or fail with what went wrong."""
        try:
            self.check()
            outcome = self.run()
        except TaskError as exc:
            self.module.fail_json(msg=str(exc))
        except GerritError as exc:
            self.module.fail_json(msg=str(exc), status=exc.status)
        self.exit(outcome)

    def check(self):
        """Refuse the task before any request if an option names what Gerrit would refuse."""
        for key, what in self.name_checks.items():
            error = self.params[key] is not None and self.name_error(self.params[key], what)
            if error:
                raise TaskError(error)

    def run(self):
        return ensure(self.read, self.plan, self.create, self.update, self.delete,
                      present=self.params.get("state") != "absent", check_mode=self.check_mode,
                      show=self.show)

    def show(self, obj):
        return obj

    def exit(self, outcome):
        result = dict(changed=outcome.changed)
        if outcome.created is not None:
            result["created"] = outcome.created
        result[self.result_key] = outcome.after
        if self.module._diff:
            result["diff"] = dict(before=outcome.before or {}, after=outcome.after or {})
        self.module.exit_json(**result)
