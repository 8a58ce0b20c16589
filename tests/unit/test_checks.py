"""plugins/module_utils/checks.py: the value checks every reader of variables shares, and the
Jinja test and filters the roles' validate.yaml use them through."""

from __future__ import annotations

import time

import pytest
from jinja2 import Environment

from plugins.filter import devinfra_checks as check_filters
from plugins.module_utils import checks
from plugins.test import devinfra as check_tests


@pytest.mark.parametrize("value", ["zuul01", "mirror01.dfw.example.org", "a", "x-1.y-2", "A1"])
def test_host_names(value):
    assert checks.valid("host_name", value)


@pytest.mark.parametrize("value", ["", "-a", "a-", "a..b", ".a", "a.", "a_b", "a b", "a;b", "é",
                                   "*.example.org", "a" * 64, ".".join(["a" * 60] * 5), 5, None,
                                   ["a"], "a\n"])
def test_not_host_names(value):
    assert not checks.valid("host_name", value)


def test_wildcard_host_names():
    assert checks.valid("host_name", "*.example.org", wildcard=True)
    assert not checks.valid("host_name", "*example.org", wildcard=True)
    assert not checks.valid("host_name", "a.*.org", wildcard=True)


@pytest.mark.parametrize("value, expected", [
    (1, True), (65535, True), ("443", True), (0, False), (65536, False), ("-1", False),
    (True, False), ("80 ", False), ("٣", False), (None, False), (8.0, False), ("123456", False)])
def test_ports(value, expected):
    assert checks.valid("port", value) is expected


def test_port_exclusions():
    assert not checks.valid("port", 80, exclude=[80, 443])
    assert checks.valid("port", 3903, exclude=[80, 443])
    assert checks.describe("port", exclude=[443, 80]) == "a port (1-65535) other than 80, 443"


@pytest.mark.parametrize("value, expected", [
    ("smtp.example.org:25", True), ("127.0.0.1:9093", True), ("localhost:0", False),
    ("host", False), (":25", False), ("a b:25", False), ("[::1]:25", False)])
def test_host_ports(value, expected):
    assert checks.valid("host_port", value) is expected


@pytest.mark.parametrize("value, path, expected", [
    ("http://127.0.0.1:9001", "none", True),
    ("http://127.0.0.1:9001/", "none", False),
    ("https://zuul01", "none", True),
    ("http://[::1]:8080", "none", True),
    ("http://[zz]:8080", "none", False),
    ("http://[127.0.0.1]", "none", False),
    ("https://pagure01/", "root", True),
    ("https://pagure01", "root", True),
    ("https://pagure01/x", "root", False),
    ("https://deb.debian.org/debian/", "dir", True),
    ("https://deb.debian.org/debian", "dir", False),
    ("https://deb.debian.org", "dir", False),
    ("https://example.org/a?b=c", "any", True),
    ("https://example.org", "any", True),
    ("https://example.org:99999/", "any", False),
    ("https://exa mple.org/", "any", False),
    ("https://example.org/a;b", "any", False),
    ("https://example.org/a{b}", "any", False),
    ("https://example.org/$x", "any", False),
    ("https://example.org/\n", "any", False),
    ("ftp://example.org/", "any", False),
    ("https://user@example.org/", "any", False),
    ("https:///x", "any", False),
    ("example.org", "any", False),
    (["https://example.org"], "any", False),
])
def test_urls(value, path, expected):
    assert checks.valid("url", value, path=path) is expected


def test_url_schemes_and_words():
    assert checks.valid("url", "ssh://git@x/", schemes=["ssh"]) is False  # user@ is not a host
    assert checks.valid("url", "ssh://review.example.org:29418/", schemes=["ssh", "https"])
    assert checks.describe("url", path="none") == "an http(s) URL without a path"
    assert checks.describe("url", path="dir", schemes=["https"]) == "an https URL whose path ends with /"
    with pytest.raises(ValueError, match="path must be"):
        checks.valid("url", "https://x", path="some")


@pytest.mark.parametrize("value, directory, expected", [
    ("/etc/devinfra/pki", False, True), ("/srv/logs/", True, True), ("/srv/logs", True, False),
    ("/", True, True), ("relative/x", False, False), ("", False, False), ("/a b", False, False),
    ("/a;b", False, False), ("/a/../etc", False, False), ("/a/..b", False, True),
    ("/a\n", False, False), (None, False, False), ("/a'b", False, False)])
def test_absolute_paths(value, directory, expected):
    assert checks.valid("abs_path", value, directory=directory) is expected


@pytest.mark.parametrize("kind, good, bad", [
    ("unix_name", ["zuul", "_apt", "backup-etherpad01"], ["Zuul", "1zuul", "a" * 33, "a b"]),
    ("sql_name", ["etherpad", "_x1"], ["Etherpad", "a-b", "a" * 64]),
    ("name", ["debian-trixie", "a.b_c-d", "0"], ["-a", ".a", "a/b", ""]),
    ("nginx_size", ["20g", "512", "10M"], ["20 g", "g", "1t", "-1"]),
    ("nginx_time", ["10s", "30d", "1h30m", "60"], ["1 h", "h", "10x", ""]),
    ("prometheus_duration", ["30s", "5m", "1h30m"], ["30", "1 h", "5M", ""]),
    ("systemd_timespan", ["30s", "5min", "1h 30min", "30"], ["soon", "5 minutes", ""]),
    ("email", ["infra-root@example.org"], ["infra-root", "a@b@c", "a b@c"]),
    ("ssh_public_key", ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB0 alice@x"],
     ["ssh-dss AAAAB3NzaC1kc3MAAACBAP", "ssh-ed25519", "ssh-ed25519 AAAA\nssh-rsa AAAA"]),
    ("sha256", ["a" * 64], ["a" * 63, "g" * 64]),
    ("semver", ["2.5.0", "10.20.3"], ["2.5", "v2.5.0", "2.5.0-rc1"]),
    ("git_ref", ["v2.5.0", "main", "release/2.5"], ["-x", ".x", "a b", "a..b" * 0 + "~x"]),
])
def test_pattern_kinds(kind, good, bad):
    for value in good:
        assert checks.valid(kind, value), (kind, value)
    for value in bad + [None, 5, ["x"]]:
        assert not checks.valid(kind, value), (kind, value)


def test_every_kind_has_words():
    for kind in checks.KINDS:
        assert checks.describe(kind)


def test_unknown_kind():
    with pytest.raises(ValueError, match="unknown check 'hostname'"):
        checks.valid("hostname", "x")


@pytest.mark.parametrize("kind", sorted(checks.KINDS))
def test_checks_take_linear_time(kind):
    """No pattern backtracks: 100,000 characters of a near-miss are judged at once."""
    for filler in ("a", "1", "a.", "-", "/", "1h", " 1s"):
        value = filler * 50_000 + "!"
        start = time.perf_counter()
        checks.valid(kind, value)
        assert time.perf_counter() - start < 1.0, (kind, filler)


def test_duplicates_and_unknown():
    assert checks.duplicates(["a", "b", "a", "c", "b", "a"]) == ["a", "b"]
    assert checks.duplicates([]) == []
    assert checks.unknown(["debian", "pypi", "cpan"], {"debian": 1, "pypi": 2}) == ["cpan"]


def _env():
    env = Environment()
    env.tests.update(check_tests.TestModule().tests())
    env.filters.update(check_filters.FilterModule().filters())
    return env


def test_jinja_test_and_filters():
    env = _env()
    template = env.from_string(
        "{{ u is devinfra_valid('url', path='none') }} {{ u is not devinfra_valid('url', path='dir') }}"
        " {{ names | devinfra_duplicates }} {{ names | devinfra_unknown(['a']) }}"
        " {{ 'abs_path' | devinfra_describe(directory=true) }}")
    assert template.render(u="http://127.0.0.1:9001", names=["a", "b", "b"]) == (
        "True True ['b'] ['b', 'b'] an absolute path ending with /")


def test_jinja_errors_name_the_check():
    from ansible.errors import AnsibleFilterError
    env = _env()
    with pytest.raises(AnsibleFilterError, match="devinfra_valid\\('hostname'\\)"):
        env.from_string("{{ 'x' is devinfra_valid('hostname') }}").render()
    with pytest.raises(AnsibleFilterError, match="expected a list"):
        env.from_string("{{ 'abc' | devinfra_duplicates }}").render()
    with pytest.raises(AnsibleFilterError, match="unknown check"):
        env.from_string("{{ 'x' | devinfra_describe }}").render()


def test_rules_give_problems_that_name_the_variable():
    problems = check_filters.devinfra_problems([
        {"name": "mirror_cache_max_size", "value": "twenty gigs", "kind": "nginx_size"},
        {"name": "mirror_cache_keys_size", "value": "10m", "kind": "nginx_size"},
        {"name": "webfront_upstreams", "value": ["http://a:1", "http://b/x"], "kind": "url", "path": "none",
         "each": True},
        {"name": "base_pip_index_url", "value": "", "kind": "url", "optional": True},
        {"name": "alertmanager_smarthost", "value": "", "kind": "host_port"},
        {"name": "mirror_server_aliases", "value": "x", "kind": "host_name", "each": True},
    ])
    assert problems == [
        "mirror_cache_max_size is twenty gigs: not a size (a number, optionally followed by k, m or g,"
        " e.g. 20g)",
        "webfront_upstreams[1] is http://b/x: not an http(s) URL without a path",
        "alertmanager_smarthost is : not host:port",
        "mirror_server_aliases must be a list, not 'x'",
    ]


@pytest.mark.parametrize("rules, message", [
    ("x", "expected a list of rules"),
    ([{"name": "a", "kind": "url"}], "rule 0 needs name, value and kind"),
    ([{"name": "a", "value": 1, "kind": "uri"}], "rule 0 \\(a\\): unknown check 'uri'"),
    ([{"name": "a", "value": 1, "kind": "port", "colour": "red"}], "rule 0 \\(a\\): .*colour"),
])
def test_bad_rules_are_named(rules, message):
    from ansible.errors import AnsibleFilterError
    with pytest.raises(AnsibleFilterError, match=message):
        check_filters.devinfra_problems(rules)


def test_item_names_number_the_first_brackets():
    problems = check_filters.devinfra_problems([
        {"name": "static_locations[].path", "value": ["/a/", "/b"], "kind": "abs_path", "directory": True,
         "each": True}])
    assert problems == ["static_locations[1].path is /b: not an absolute path ending with /"]


@pytest.mark.parametrize("entry, key, expected", [
    ({"name": "alpha"}, "name", "providers[0] (alpha)"),
    ({"project": "a\nb"}, "project", "providers[0] ('a\\nb')"),
    ({"name": 5}, "name", "providers[0] (5)"),
    ({"name": ""}, "name", "providers[0]"),
    ("alpha", "name", "providers[0]"),
])
def test_where_names_the_entry(entry, key, expected):
    assert checks.where("providers", 0, entry, key=key) == expected
