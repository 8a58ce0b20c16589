"""The value checks every part of devinfra shares: one definition of a host name, a URL, a path,
a size, a duration, a port, and of "listed twice" or "names something unknown".

Plain Python with no Ansible import, so that every reader of variables uses the same rules:

- the roles' ``tasks/validate.yaml``, through the Jinja test ``devinfra_valid`` and the filters
  ``devinfra_problems``, ``devinfra_duplicates`` and ``devinfra_unknown`` (plugins/test/devinfra.py,
  plugins/filter/devinfra_checks.py);
- the filters that check their input (monitoring, zuul_launcher, projects), which read this file
  by its path (Ansible's controller plugins cannot import a repository's module_utils);
- the yamlgroup inventory plugin (an exact entry that is not a host name warns);
- the devinfra command (``devinfra validate``, ``devinfra hosts``), through devinfra/checks.py;
- and any module, as ``ansible.module_utils.checks`` (ansible.cfg's ``module_utils`` path).

Every check is a kind in ``KINDS``: ``valid(kind, value, **options)`` says whether the value is
one, ``describe(kind, **options)`` says in words what one is (for error messages). The patterns
have no nested quantifiers, so a check takes linear time in the value's length whatever it is
given (values can come from users: host names from a cloud's API, URLs from group_vars).

A value of the wrong type (a list where a URL belongs, ``True`` for a port) is never valid and
never raises: the caller reports it like any other bad value.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable, Mapping

# Characters no path or URL may hold: they end or break a directive in nginx, systemd, shell
# and PostgreSQL configuration, where these values are written.
_UNSAFE = " \t\r\n\f\v;{}\"'$\\`"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOST_NAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
_URL = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*)://(?P<host>\[[0-9A-Fa-f:.]+\]|[^/:\[\]]+)"
                  r"(?::(?P<port>[0-9]{1,5}))?(?P<path>/.*)?", re.DOTALL)


def _text(value: object) -> str | None:
    """The value as a plain string, or None when it is not a string."""
    return str.__str__(value) if isinstance(value, str) else None


def host_name(value: object, wildcard: bool = False) -> bool:
    """A DNS host name: dot-separated labels of letters, digits and inner dashes, at most 253
    characters. With wildcard, ``*.`` may lead (a server alias such as ``*.example.org``)."""
    text = _text(value)
    if text is None:
        return False
    if wildcard and text.startswith("*."):
        text = text[2:]
    return len(text) <= 253 and _HOST_NAME.fullmatch(text) is not None


def ip_address(value: object) -> bool:
    """An IPv4 or IPv6 address (no brackets, no prefix length)."""
    text = _text(value)
    if text is None:
        return False
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def port(value: object, exclude: Iterable[int] = ()) -> bool:
    """A TCP/UDP port, 1-65535, as an integer or a string of digits; not one of exclude."""
    if isinstance(value, bool):
        return False
    if isinstance(value, str):
        if not value.isascii() or not value.isdigit() or len(value) > 5:
            return False
        value = int(value)
    return isinstance(value, int) and 1 <= value <= 65535 and value not in set(exclude)


def host_port(value: object) -> bool:
    """``host:port``: a host name or IPv4 address, a colon, a port."""
    text = _text(value)
    if text is None or ":" not in text:
        return False
    host, _, number = text.rpartition(":")
    return (host_name(host) or ip_address(host)) and port(number)


def url(value: object, schemes: Iterable[str] = ("http", "https"), path: str = "any") -> bool:
    """An absolute URL of one of schemes, to a host name or an IP address (IPv6 in brackets),
    with an optional port, and no character from _UNSAFE.

    path says what may follow the host and port:
    ``none`` nothing at all (``http://127.0.0.1:9001``, an nginx upstream);
    ``root`` nothing or ``/``;
    ``dir`` a path ending with ``/`` (``https://deb.debian.org/debian/``, a base others append to);
    ``any`` anything, or nothing.
    """
    if path not in ("none", "root", "dir", "any"):
        raise ValueError(f"url(): path must be none, root, dir or any, not {path!r}")
    text = _text(value)
    if text is None or any(c in _UNSAFE for c in text) or not text.isprintable():
        return False
    match = _URL.fullmatch(text)
    if match is None or match["scheme"] not in tuple(schemes):
        return False
    host = match["host"]
    if host.startswith("["):
        if not ip_address(host[1:-1]) or ":" not in host:
            return False
    elif not (host_name(host) or ip_address(host)):
        return False
    if match["port"] is not None and not port(match["port"]):
        return False
    rest = match["path"] or ""
    if path == "none":
        return rest == ""
    if path == "root":
        return rest in ("", "/")
    if path == "dir":
        return rest.endswith("/")
    return True


def abs_path(value: object, directory: bool = False) -> bool:
    """An absolute path with no character from _UNSAFE and no ``..`` component; with
    directory, it ends with ``/`` (an nginx ``alias`` that a location's path is appended to)."""
    text = _text(value)
    if text is None or not text.startswith("/") or not text.isprintable():
        return False
    if any(c in _UNSAFE for c in text) or ".." in text.split("/"):
        return False
    return text.endswith("/") if directory else True


def _pattern(regex: str) -> Callable[[object], bool]:
    compiled = re.compile(regex)

    def check(value: object) -> bool:
        text = _text(value)
        return text is not None and compiled.fullmatch(text) is not None

    return check


# A user or group name as Debian's adduser takes it by default (at most 32 characters).
unix_name = _pattern(r"[a-z_][a-z0-9_-]{0,31}")
# A PostgreSQL role or database name we create unquoted.
sql_name = _pattern(r"[a-z_][a-z0-9_]{0,62}")
# A name used in file names and configuration keys: a job, an image, a plugin.
name = _pattern(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
# nginx sizes (``20g``) and times (``10s``, ``1h30m``, or plain seconds).
nginx_size = _pattern(r"[0-9]{1,15}[kKmMgG]?")
nginx_time = _pattern(r"[0-9]{1,15}|(?:[0-9]{1,15}(?:ms|s|m|h|d|w|M|y)){1,8}")
# A Prometheus duration (``30s``, ``1h30m``).
prometheus_duration = _pattern(r"(?:[0-9]{1,15}(?:ms|s|m|h|d|w|y)){1,7}")
# A systemd time span (``30s``, ``5 min``, ``1h 30min``; plain seconds).
_SYSTEMD_UNIT = r"(?:us|ms|s|sec|min|m|h|d|w)"
systemd_timespan = _pattern(rf"[0-9]{{1,15}} ?{_SYSTEMD_UNIT}?(?: ?[0-9]{{1,15}} ?{_SYSTEMD_UNIT}){{0,7}}")
# An email address, as far as a configuration file needs to know.
email = _pattern(r"[^@\s]{1,64}@[^@\s]{1,255}")
# An OpenSSH public key line (type, base64, optional comment).
ssh_public_key = _pattern(r"(?:ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(?:256|384|521)) "
                          r"[A-Za-z0-9+/]{16,8192}={0,2}(?: [^\n]{0,1024})?")
sha256 = _pattern(r"[0-9a-fA-F]{64}")
# A release as X.Y.Z (npm, pnpm).
semver = _pattern(r"[0-9]{1,9}\.[0-9]{1,9}\.[0-9]{1,9}")
# A git branch or tag name (no "..", no leading dash or dot).
git_ref = _pattern(r"[A-Za-z0-9](?:[A-Za-z0-9._/-]{0,254})")


# kind: (check, what a valid value is, in words)
KINDS: dict[str, tuple[Callable[..., bool], str]] = {
    "host_name": (host_name, "a host name (letters, digits, dots and dashes)"),
    "ip_address": (ip_address, "an IP address"),
    "port": (port, "a port (1-65535)"),
    "host_port": (host_port, "host:port"),
    "url": (url, "an http(s) URL"),
    "abs_path": (abs_path, "an absolute path"),
    "unix_name": (unix_name, "a user or group name (lower-case letters, digits, _ and -)"),
    "sql_name": (sql_name, "a PostgreSQL name (lower-case letters, digits and _)"),
    "name": (name, "a name (letters, digits, '.', '_', '-'; starting with a letter or digit)"),
    "nginx_size": (nginx_size, "a size (a number, optionally followed by k, m or g, e.g. 20g)"),
    "nginx_time": (nginx_time, "a time (e.g. 10s, 5m, 30d)"),
    "prometheus_duration": (prometheus_duration, "a duration (e.g. 30s, 5m, 1h30m)"),
    "systemd_timespan": (systemd_timespan, "a time span (e.g. 30s, 5min, 1h)"),
    "email": (email, "an email address"),
    "ssh_public_key": (ssh_public_key, "an OpenSSH public key (type, key, optional comment)"),
    "sha256": (sha256, "a SHA-256 checksum (64 hex digits)"),
    "semver": (semver, "a version X.Y.Z"),
    "git_ref": (git_ref, "a git branch or tag name"),
}

_URL_PATHS = {
    "none": "without a path",
    "root": "with no path but /",
    "dir": "whose path ends with /",
    "any": "",
}


def valid(kind: str, value: object, **options) -> bool:
    """Whether value is a valid kind (see KINDS); options go to the kind's check."""
    try:
        check = KINDS[kind][0]
    except KeyError:
        raise ValueError(f"unknown check {kind!r} (known: {', '.join(sorted(KINDS))})") from None
    return check(value, **options)


def describe(kind: str, **options) -> str:
    """What a valid kind is, in words, for an error message."""
    text = KINDS[kind][1]
    if kind == "url":
        schemes = tuple(options.get("schemes", ("http", "https")))
        scheme = "http(s)" if schemes == ("http", "https") else "/".join(schemes)
        text = " ".join(filter(None, [f"an {scheme} URL", _URL_PATHS[options.get("path", "any")]]))
    elif kind == "host_name" and options.get("wildcard"):
        text += ", optionally after *."
    elif kind == "abs_path" and options.get("directory"):
        text = "an absolute path ending with /"
    elif kind == "port" and options.get("exclude"):
        text = f"a port (1-65535) other than {', '.join(map(str, sorted(options['exclude'])))}"
    return text


def where(prefix: str, index: int, entry: object, key: str = "name") -> str:
    """Where an entry of a list is, for messages: ``prefix[index]``, then the entry's key (its
    name) in brackets when it has one, shown as repr when it is not printable text:
    ``zuul_launcher_openstack[0] (alpha)``, ``projects[2] ('a\\nb')``."""
    name = entry.get(key) if isinstance(entry, Mapping) else None
    if name is None or name == "":
        return f"{prefix}[{index}]"
    shown = name if isinstance(name, str) and name.isprintable() else repr(name)
    return f"{prefix}[{index}] ({shown})"


def duplicates(values: Iterable[object]) -> list:
    """The values listed more than once, each once, in the order of their second listing."""
    seen: list = []
    repeated: list = []
    for value in values:
        if value in seen:
            if value not in repeated:
                repeated.append(value)
        else:
            seen.append(value)
    return repeated


def unknown(values: Iterable[object], known: Iterable[object] | Mapping) -> list:
    """The values that are not in known (a reference to a name nothing defines), in order."""
    names = list(known)
    return [value for value in values if value not in names]
