"""Behaviour of the mirror role, seen from a CI node.

mirror1 runs the mirror (pki certificate, nginx caching PyPI, npm and
Debian's archive); mirrorclient1 trusts the scenario CA and installs real
packages through it with pip, npm and apt.
"""

import json
import re
import time

import pytest
from devinfra_molecule import host_fixtures, wait_for

CURL = "curl -sS --max-time 60"
LOG = "/var/log/nginx/mirror.access.log"
# Small pure wheels, pinned: the files must be the same on every run.
PIP_PACKAGES = ["idna==3.10", "six==1.17.0", "attrs==25.3.0"]
PIP = "--no-cache-dir --disable-pip-version-check --index-url https://mirror1/pypi/simple/"


globals().update(host_fixtures("mirror1", client="mirrorclient1"))


def log_lines(host, pattern):
    """Access log lines of mirror1 that match the regular expression."""
    return [line for line in host.file(LOG).content_string.splitlines() if re.search(pattern, line)]


def pip_install(client, venv):
    client.run_expect([0], f"rm -rf {venv} && python3 -m venv {venv}")
    return client.run(f"{venv}/bin/pip install {PIP} {' '.join(PIP_PACKAGES)}")


def headers(client, url):
    """Status line and headers (lower-case names) of a GET through the mirror."""
    out = client.check_output(f"{CURL} -o /dev/null -D - {url}")
    status = int(out.splitlines()[0].split()[1])
    found = dict(line.split(": ", 1) for line in out.splitlines()[1:] if ": " in line)
    return status, {k.lower(): v.strip() for k, v in found.items()}


def test_pip_installs_through_the_mirror_and_the_second_time_from_its_cache(mirror1, client):
    first = pip_install(client, "/tmp/venv-first")
    assert first.rc == 0, first.stdout + first.stderr
    # Every wheel came through the mirror's /pypifiles/ (the links were
    # rewritten), not from files.pythonhosted.org directly.
    wheels = [p.split("==")[0] for p in PIP_PACKAGES]
    for name in wheels:
        assert log_lines(mirror1, rf'"GET /pypifiles/\S+/{name}-\S+\.whl HTTP'), name
    hits_before = len(log_lines(mirror1, r'"GET /pypifiles/\S+\.whl HTTP/\S+" 200 \d+ cache=HIT'))

    second = pip_install(client, "/tmp/venv-second")
    assert second.rc == 0, second.stdout + second.stderr
    hits_after = len(log_lines(mirror1, r'"GET /pypifiles/\S+\.whl HTTP/\S+" 200 \d+ cache=HIT'))
    assert hits_after - hits_before == len(wheels)
    assert client.run_expect([0], "/tmp/venv-second/bin/python -c 'import idna, six, attrs'")


def test_a_cached_file_says_hit_in_its_headers(client):
    page = client.check_output(f"{CURL} -H 'Accept: text/html' https://mirror1/pypi/simple/six/")
    link = re.search(r'href="(/pypifiles/[^"#]+six-1\.17\.0-py2\.py3-none-any\.whl)', page)
    assert link, page[:2000]
    client.check_output(f"{CURL} -o /dev/null https://mirror1{link.group(1)}")
    status, found = headers(client, f"https://mirror1{link.group(1)}")
    assert status == 200
    assert found["x-cache-status"] == "HIT"


def test_simple_pages_point_at_the_mirror_in_both_forms(client):
    html = client.check_output(f"{CURL} -H 'Accept: text/html' https://mirror1/pypi/simple/idna/")
    as_json = client.check_output(
        f"{CURL} -H 'Accept: application/vnd.pypi.simple.v1+json' https://mirror1/pypi/simple/idna/")
    files = json.loads(as_json)["files"]
    assert files and all(f["url"].startswith("/pypifiles/") for f in files)
    assert "files.pythonhosted.org" not in html + as_json
    assert 'href="/pypifiles/' in html


def test_npm_installs_through_the_mirror(mirror1, client):
    client.run_expect([0], "rm -rf /tmp/npm-project && mkdir /tmp/npm-project")
    cmd = client.run(
        "cd /tmp/npm-project && npm install --no-audit --no-fund --cache /tmp/npm-cache-$$"
        " --registry https://mirror1/npm/ is-number@7.0.0")
    assert cmd.rc == 0, cmd.stdout + cmd.stderr
    package = client.file("/tmp/npm-project/node_modules/is-number/package.json").content_string
    assert json.loads(package)["version"] == "7.0.0"
    lock = json.loads(client.file("/tmp/npm-project/package-lock.json").content_string)
    assert lock["packages"]["node_modules/is-number"]["resolved"] == (
        "https://mirror1/npm/is-number/-/is-number-7.0.0.tgz")
    assert log_lines(mirror1, r'"GET /npm/is-number/-/is-number-7\.0\.0\.tgz HTTP/\S+" 200 ')


def test_apt_installs_through_the_mirror_over_http(mirror1, client):
    # Only the mirror as a source, with its own lists, so nothing else can
    # serve the package.
    client.run_expect([0], "mkdir -p /tmp/apt-mirror/lists/partial /tmp/apt-mirror/archives/partial && "
                      "echo 'deb http://mirror1/debian trixie main' > /tmp/apt-mirror/sources.list")
    apt = ("apt-get -q -o Dir::Etc::SourceList=/tmp/apt-mirror/sources.list -o Dir::Etc::SourceParts=-"
           " -o Dir::State::Lists=/tmp/apt-mirror/lists")
    update = client.run(f"{apt} update")
    assert update.rc == 0, update.stdout + update.stderr
    assert "http://mirror1/debian trixie" in update.stdout
    install = client.run(f"DEBIAN_FRONTEND=noninteractive {apt} install -y --reinstall"
                         " -o Dir::Cache::Archives=/tmp/apt-mirror/archives hello")
    assert install.rc == 0, install.stdout + install.stderr
    assert client.run("hello").stdout.strip() == "Hello, world!"
    assert log_lines(mirror1, r'"GET /debian/pool/main/h/hello/hello_\S+\.deb HTTP/\S+" 200 ')


def test_a_missing_package_is_a_404_and_not_cached_as_a_success(client):
    url = "https://mirror1/pypi/simple/devinfra-no-such-package-4f1c9e/"
    for _ in range(2):
        status, found = headers(client, url)
        assert status == 404
        assert found.get("x-cache-status") in ("MISS", "HIT")
    status, _ = headers(client, "https://mirror1/npm/devinfra-no-such-package-4f1c9e")
    assert status == 404
    status, _ = headers(client, "https://mirror1/pypifiles/packages/no/such/file-1.0-py3-none-any.whl")
    assert status in (403, 404)


def test_region_alias_has_a_valid_certificate(mirror1, client):
    address = mirror1.interface("eth0").addresses[0]
    out = client.check_output(
        f"{CURL} --resolve mirror.test-region.example.org:443:{address} "
        "https://mirror.test-region.example.org/")
    assert "package mirror" in out


def test_published_directory_is_served_with_listings(client):
    listing = client.check_output(f"{CURL} http://mirror1/reprepro/dists/")
    assert 'href="trixie/"' in listing
    assert client.check_output(f"{CURL} https://mirror1/reprepro/dists/trixie/Release") == (
        "Origin: devinfra molecule")


def test_webfront_owns_nginx_and_the_mirror_is_its_snippet(mirror1, client):
    assert "include /etc/nginx/devinfra.d/*.conf;" in mirror1.file("/etc/nginx/nginx.conf").content_string
    snippet = mirror1.file("/etc/nginx/devinfra.d/mirror.conf").content_string
    assert re.search(r"server_name mirror1\b", snippet)
    # A name the mirror does not serve (its address) reaches webfront's
    # default server: no answer (444).
    address = mirror1.interface("eth0").addresses[0]
    assert client.run(f"{CURL} -o /dev/null http://{address}/debian/").rc != 0
    # webfront's nginx exporter comes with it.
    assert mirror1.service("prometheus-nginx-exporter").is_running


def test_upstream_certificates_are_verified(mirror1):
    config = mirror1.check_output("nginx -T 2>/dev/null")
    assert "proxy_ssl_verify on;" in config
    assert "proxy_ssl_trusted_certificate /etc/ssl/certs/ca-certificates.crt;" in config


# mtail's counters, on mirror1 itself (python3: the host has no curl).
METRICS = ("python3 -c \"import urllib.request; print(urllib.request.urlopen("
           "'http://localhost:3903/metrics', timeout=10).read().decode())\"")


def mtail_requests(mirror1):
    """mirror_requests_total by (cache, section), from mtail on mirror1."""
    found = {}
    for line in mirror1.check_output(METRICS).splitlines():
        sample = re.match(r"mirror_requests_total\{(.*)\} (\S+)$", line)
        if sample:
            labels = dict(re.findall(r'(\w+)="([^"]*)"', sample.group(1)))
            found[(labels["cache"], labels["section"])] = float(sample.group(2))
    return found


def counted(mirror1, key, more_than):
    """Wait until mtail has counted more than `more_than` requests for (cache, section)."""
    return wait_for(lambda: mtail_requests(mirror1).get(key, 0) > more_than, 30,
                    f"mtail to count a request {key}", interval=0.5)


@pytest.fixture(scope="module")
def wheel_url(client):
    """A wheel the pip test above has cached: its URL through the mirror."""
    page = client.check_output(f"{CURL} -H 'Accept: text/html' https://mirror1/pypi/simple/six/")
    return "https://mirror1" + re.search(r'href="(/pypifiles/[^"#]+six-1\.17\.0-py2\.py3-none-any\.whl)',
                                         page).group(1)


def test_mtail_runs_the_debian_way(mirror1):
    service = mirror1.service("mtail")
    assert service.is_enabled and service.is_running
    default = mirror1.file("/etc/default/mtail").content_string
    assert "LOGS=/var/log/nginx/mirror.access.log" in default and "PORT=3903" in default
    assert mirror1.check_output("systemctl show -P ProtectSystem mtail") == "strict"
    assert mirror1.check_output("systemctl show -P User mtail") == "mtail"
    # On every address: the firewall (not mtail) decides who reaches it.
    assert re.search(r"(\*|0\.0\.0\.0|\[::\]):3903\b", mirror1.check_output("ss -Hltn"))


def test_mtail_counts_requests_by_cache_status_and_section(mirror1, client, wheel_url):
    before = mtail_requests(mirror1)
    client.check_output(f"{CURL} -o /dev/null {wheel_url}")
    counted(mirror1, ("HIT", "pypifiles"), before.get(("HIT", "pypifiles"), 0))
    # A local directory: nothing proxied, cache "none".
    client.check_output(f"{CURL} -o /dev/null http://mirror1/reprepro/dists/")
    counted(mirror1, ("none", "reprepro"), before.get(("none", "reprepro"), 0))
    # A path that is none of the mirror's sections adds no series of its own.
    client.run(f"{CURL} -o /dev/null http://mirror1/no-such-section/x")
    counted(mirror1, ("none", "other"), before.get(("none", "other"), 0))
    assert "no-such-section" not in {section for _, section in mtail_requests(mirror1)}
    # The bytes too, and from another host (mtail listens on every address).
    metrics = client.check_output(f"{CURL} http://mirror1:3903/metrics")
    hits = 'cache="HIT",prog="mirror.mtail",section="pypifiles"'
    assert re.search(r"mirror_requests_total\{" + re.escape(hits) + r"\} \d+", metrics), metrics[-2000:]
    assert f"mirror_response_bytes_total{{{hits}}}" in metrics


def test_mtail_follows_the_log_across_its_rotation(mirror1, client):
    """Debian's logrotate renames the log and nginx reopens a new one: mtail goes on with it."""
    key, url = ("none", "reprepro"), "http://mirror1/reprepro/dists/"
    mirror1.run_expect([0], "logrotate --force /etc/logrotate.d/nginx")
    assert mirror1.file(f"{LOG}.1").exists

    def logged_in_the_new_file():
        client.check_output(f"{CURL} -o /dev/null {url}")
        return log_lines(mirror1, r'"GET /reprepro/dists/ HTTP/\S+" 200 ')
    wait_for(logged_in_the_new_file, 30, "nginx to log into the new file", interval=1)

    def settled():
        first = mtail_requests(mirror1).get(key, 0)
        time.sleep(1)
        return [first] if mtail_requests(mirror1).get(key, 0) == first else None
    [before] = wait_for(settled, 30, "mtail to catch up with the new file")
    client.check_output(f"{CURL} -o /dev/null {url}")
    wait_for(lambda: mtail_requests(mirror1).get(key, 0) == before + 1, 30,
             "mtail to count the request written to the new file", interval=0.5)


def test_check_mode_on_converged_hosts_reports_no_change(check_mode_is_clean):
    check_mode_is_clean()


UPSTREAMS = [
    {"name": "pypi", "url": "https://pypi.org/"},
    {"name": "pypifiles", "url": "https://files.pythonhosted.org/"},
]


@pytest.mark.parametrize(
    ("extra_vars", "message"),
    [
        ({"mirror_upstreams": [*UPSTREAMS, {"name": "rubygems", "url": "https://rubygems.org/"}]},
         "mirror_upstreams: unknown upstream name rubygems"),
        ({"mirror_cache_max_size": "twenty gigs"},
         "mirror_cache_max_size is twenty gigs: not a size"),
        ({"mirror_upstreams": [UPSTREAMS[0]]}, "pypi needs pypifiles"),
        ({"mirror_local_directories": [{"path": "/npm/x/", "directory": "/srv/"}]},
         "is inside the path of upstream npm"),
        ({"mirror_cache_inactive": "a month"}, "mirror_cache_inactive is a month: not a time"),
        # The argument spec's types, through the `validate` entry point.
        ({"mirror_listen_ipv6": "sometimes"}, "mirror_listen_ipv6"),
        ({"mirror_mtail_port": 443}, "mirror_mtail_port is 443: not a port (1-65535) other than 80, 443"),
    ],
    ids=["unknown-upstream", "size-not-a-size", "pypi-without-files", "local-in-upstream",
         "time-not-a-time", "wrong-type", "mtail-on-https-port"],
)
def test_bad_variables_fail_before_any_host_changes(bad_vars_change_nothing, mirror1, extra_vars, message):
    def live_config():
        return mirror1.check_output("sha256sum /etc/nginx/nginx.conf /etc/nginx/devinfra.d/*.conf"
                                    " /etc/default/mtail /etc/mtail/*.mtail")

    bad_vars_change_nothing(extra_vars, message, live_config)


def test_nginx_logged_no_critical_error(mirror1):
    # Runs last: after every client above went through the mirror.
    errors = mirror1.file("/var/log/nginx/error.log").content_string
    assert not re.findall(r"\[(crit|alert|emerg)\].*", errors)
