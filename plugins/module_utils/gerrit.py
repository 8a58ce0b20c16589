"""A small client for Gerrit's REST API, shared by the gerrit_* modules in library/.

Modules import it as ``ansible.module_utils.gerrit`` (ansible.cfg's
``module_utils`` path). It speaks the documented REST API of Gerrit 3.x:
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
from http import HTTPStatus
from urllib.error import HTTPError
from urllib.parse import quote, unquote_plus

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


def exit_with_state(module, key, before, after):
    """Exit a module that manages one object: changed, created, the object, and its diff."""
    result = dict(changed=before != after, created=before is None)
    result[key] = after
    if module._diff:
        result["diff"] = dict(before=before or {}, after=after)
    module.exit_json(**result)


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
