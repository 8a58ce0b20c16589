"""Behaviour of the webfront role, seen from another host.

webfront1 runs nginx (the role) in front of a small Python backend on
127.0.0.1:8081 (HTTP and a websocket echo); webclient1 is the client.
"""

import copy
import json
import re

import pytest
from devinfra_molecule import host_fixtures, run_playbook, scenario_directory, wait_for

CURL = "curl -sS --max-time 10"
# The vhosts of converge.yaml, for runs with one of them broken.
VHOSTS = [
    {
        "server_name": "webfront1",
        "upstream": "http://127.0.0.1:8081",
        "client_max_body_size": "1m",
        "websocket_locations": [{"path": "/ws/"}],
        "static_locations": [{"path": "/logs/", "directory": "/srv/logs/", "autoindex": True}],
    },
    {
        "server_name": "other.example.test",
        "server_aliases": ["www.other.example.test"],
        "upstream": "http://127.0.0.1:8081",
        "headers": {"X-Frame-Options": "DENY"},
    },
]


globals().update(host_fixtures("webfront1", client="webclient1"))


@pytest.fixture(scope="module")
def cafile(webfront1, client):
    """Each vhost's (self-signed) certificate, copied to the client to trust it exactly."""
    paths = {}
    for name in ("webfront1", "other.example.test"):
        pem = webfront1.file(f"/etc/ssl/webfront/{name}.crt").content_string
        paths[name] = f"/tmp/{name}.crt"
        client.run_expect([0], "printf '%%s' %s > %s", pem, paths[name])
    return paths


@pytest.fixture(scope="module")
def client_address(client):
    return client.check_output("python3 -c 'import socket; print(socket.gethostbyname(\"webclient1\"))'")


def test_https_answers_with_the_backends_body_through_the_proxy(client, cafile, client_address):
    body = client.check_output(f"{CURL} --cacert {cafile['webfront1']} 'https://webfront1/hello?x=1'")
    assert body == f"backend host=webfront1 proto=https for={client_address} path=/hello?x=1 body=0"


def test_client_cannot_spoof_its_address(client, cafile, client_address):
    body = client.check_output(
        f"{CURL} --cacert {cafile['webfront1']} -H 'X-Forwarded-For: 203.0.113.66' https://webfront1/")
    assert f"for={client_address} " in body


def test_http_redirects_to_https(client):
    out = client.check_output(f"{CURL} -o /dev/null -w '%{{http_code}} %{{redirect_url}}' 'http://webfront1/a/b?c=d'")
    assert out == "301 https://webfront1/a/b?c=d"


def test_security_headers_replace_the_upstreams(client, cafile):
    head = client.check_output(f"{CURL} -D - -o /dev/null --cacert {cafile['webfront1']} https://webfront1/")
    headers = [line.split(":", 1) for line in head.lower().splitlines() if ":" in line]
    values = {}
    for name, value in headers:
        values.setdefault(name.strip(), []).append(value.strip())
    assert values["strict-transport-security"] == ["max-age=63072000"]
    assert values["x-content-type-options"] == ["nosniff"]
    # The backend sends "X-Frame-Options: ALLOWALL": hidden, ours only.
    assert values["x-frame-options"] == ["sameorigin"]
    assert values["referrer-policy"] == ["strict-origin-when-cross-origin"]
    assert values["server"] == ["nginx"], "no version in the Server header"


def test_each_vhost_has_its_own_certificate_and_headers(client, cafile):
    other = f"--connect-to other.example.test:443:webfront1:443 --cacert {cafile['other.example.test']}"
    head = client.check_output(f"{CURL} -D - {other} https://other.example.test/")
    assert "backend host=other.example.test proto=https" in head
    assert re.search(r"^x-frame-options: DENY\s*$", head, re.M | re.I)
    alias = client.run(f"{CURL} --connect-to www.other.example.test:443:webfront1:443 "
                       f"--cacert {cafile['other.example.test']} https://www.other.example.test/")
    assert alias.rc == 0, alias.stderr
    # webfront1's certificate does not vouch for other.example.test.
    wrong = client.run(f"{CURL} --connect-to other.example.test:443:webfront1:443 "
                       f"--cacert {cafile['webfront1']} https://other.example.test/")
    assert wrong.rc == 60, wrong.stderr


def test_unknown_names_get_no_answer(client):
    https = client.run(f"{CURL} -k --connect-to unknown.example.test:443:webfront1:443 https://unknown.example.test/")
    assert https.rc == 35, https.stderr  # TLS handshake refused
    http = client.run(f"{CURL} -H 'Host: unknown.example.test' http://webfront1/")
    assert http.rc == 52, http.stderr  # connection closed without an answer


@pytest.mark.parametrize(
    ("version", "accepted"), [("1.0", False), ("1.1", False), ("1.2", True), ("1.3", True)])
def test_only_modern_tls_versions(client, version, accepted):
    result = json.loads(client.check_output(f"webfront-probe tls webfront1 webfront1 {version}"))
    if accepted:
        assert result.get("version") == f"TLSv{version}", result
    else:
        assert "error" in result, result


def test_websocket_upgrade_returns_101_and_echoes(client, cafile):
    result = json.loads(client.check_output(
        f"webfront-probe ws webfront1 webfront1 /ws/echo hello-through-nginx {cafile['webfront1']}"))
    assert result == {"status": 101, "accept_ok": True, "echo": "echo: hello-through-nginx"}


def test_websocket_outlives_the_http_read_timeout(client, cafile):
    # The HTTP read timeout is 2 s in this scenario; the websocket one is an hour.
    result = json.loads(client.check_output(
        f"webfront-probe ws webfront1 webfront1 /ws/idle still-here {cafile['webfront1']} 4"))
    assert result.get("echo") == "echo: still-here", result


def test_slow_http_answer_hits_the_read_timeout(client, cafile):
    out = client.check_output(f"{CURL} -o /dev/null -w '%{{http_code}}' --cacert {cafile['webfront1']} "
                              "https://webfront1/slow")
    assert out == "504"


def test_static_log_is_served_as_text(client, cafile):
    ca = f"--cacert {cafile['webfront1']}"
    head = client.check_output(f"{CURL} -D - {ca} https://webfront1/logs/build-1/job-output.txt")
    assert re.search(r"^content-type: text/plain", head, re.M | re.I)
    assert head.endswith("build 1 passed")
    listing = client.check_output(f"{CURL} {ca} https://webfront1/logs/build-1/")
    assert 'href="job-output.txt"' in listing


def test_static_location_does_not_reach_outside_its_directory(client, cafile):
    for path in ("/logs../secret.txt", "/logs/../secret.txt", "/logs/%2e%2e/secret.txt"):
        body = client.run(f"{CURL} --path-as-is --cacert {cafile['webfront1']} 'https://webfront1{path}'").stdout
        assert "not for the web" not in body, path


def test_static_location_does_not_follow_symbolic_links(webfront1, client, cafile):
    """A link in the served tree (to a file or a directory outside it) is refused (403, 404), not followed."""
    webfront1.run_expect([0], "ln -sfn /etc/passwd /srv/logs/build-1/passwd"
                              " && ln -sfn /etc /srv/logs/build-1/etc")
    try:
        for path in ("passwd", "etc/passwd"):
            out = client.run(f"{CURL} -o /tmp/body -w '%{{http_code}}' --cacert {cafile['webfront1']}"
                             f" https://webfront1/logs/build-1/{path}")
            assert out.stdout in ("403", "404"), (path, out.stdout, out.stderr)
            assert "root:x:0:0" not in client.file("/tmp/body").content_string
    finally:
        webfront1.run_expect([0], "rm -f /srv/logs/build-1/passwd /srv/logs/build-1/etc")


def test_request_body_limit(client, cafile):
    ca = f"--cacert {cafile['webfront1']}"
    small = client.check_output(f"head -c 102400 /dev/zero | {CURL} {ca} --data-binary @- https://webfront1/upload")
    assert small.endswith("body=102400")
    big = client.check_output(
        f"head -c 2097152 /dev/zero | {CURL} -o /dev/null -w '%{{http_code}}' {ca} --data-binary @- "
        "https://webfront1/upload")
    assert big == "413"


def test_logs_rotate_and_nginx_writes_the_new_file(webfront1, client, cafile):
    log = "/var/log/nginx/webfront1.access.log"
    webfront1.run_expect([0], "logrotate --force /etc/logrotate.d/nginx")
    assert webfront1.file(f"{log}.1").exists
    client.run_expect([0], f"{CURL} -o /dev/null --cacert {cafile['webfront1']} https://webfront1/after-rotation")
    assert "/after-rotation" in webfront1.file(log).content_string


def test_check_mode_on_the_converged_host_reports_no_change(check_mode_is_clean):
    check_mode_is_clean(expect_hosts=["webfront1"])


def broken(index, **changes):
    vhosts = copy.deepcopy(VHOSTS)
    vhosts[index].update(changes)
    # The certificates of the converged vhosts exist: no self-signing needed.
    return json.dumps({"webfront_vhosts": vhosts, "webfront_tls_self_signed": False})


@pytest.mark.parametrize(
    ("extra_vars", "message"),
    [
        # Only nginx can tell: caught by nginx -t on the new file.
        (broken(0, client_max_body_size="lots"), '"client_max_body_size" directive invalid value'),
        # Caught by the role's own checks.
        (broken(0, upstream="http://127.0.0.1:8081/app"),
         "webfront_vhosts[0] (server_name: webfront1): upstream is http://127.0.0.1:8081/app: "
         "not an http(s) URL without a path"),
        (broken(1, server_name="new.example.test"),
         "/etc/ssl/webfront/new.example.test.key does not exist"),
    ],
    ids=["nginx-rejects-value", "upstream-with-path", "missing-certificate"],
)
def test_broken_vhost_fails_before_the_live_config_changes(
        bad_vars_change_nothing, webfront1, client, cafile, extra_vars, message):
    def live_config():
        return webfront1.check_output("sha256sum /etc/nginx/nginx.conf")

    bad_vars_change_nothing(extra_vars, message, live_config)
    assert client.run(f"{CURL} --cacert {cafile['webfront1']} https://webfront1/").rc == 0


SNIPPET = "/etc/nginx/devinfra.d/molecule.conf"
SNIPPET_SERVER = """
server {
    listen 80;
    server_name snippet.example.test;
    return 200 "%s";
}
"""


def add_snippet(content):
    variables = {"webfront_snippet_name": "molecule", "webfront_snippet_content": content}
    return run_playbook(scenario_directory() / "snippet.yaml", "-e", json.dumps(variables))


def test_another_roles_snippet_goes_live_only_when_nginx_accepts_it(webfront1, client):
    def live_snippet():
        return webfront1.check_output(f"sha256sum {SNIPPET} /etc/nginx/nginx.conf")

    def answer():
        return client.run(f"{CURL} -H 'Host: snippet.example.test' http://webfront1/").stdout

    try:
        run = add_snippet(SNIPPET_SERVER % "first")
        assert run.returncode == 0, run.output()
        assert "RUNNING HANDLER [webfront : Reload nginx]" in run.stdout, run.output()
        wait_for(lambda: answer() == "first", 10, "the reloaded nginx to serve the snippet", interval=0.5)
        before = live_snippet()
        # Valid alone, refused in the whole configuration: webfront's
        # nginx.conf sets server_tokens at the same (http) level.
        run = add_snippet(SNIPPET_SERVER % "second" + "server_tokens on;\n")
        assert run.returncode != 0, run.output()
        assert '"server_tokens" directive is duplicate' in run.stdout + run.stderr, run.output()
        assert live_snippet() == before
        assert answer() == "first"
        # The live configuration still passes nginx -t.
        webfront1.run_expect([0], "nginx -t -q")
    finally:
        webfront1.run(f"rm -f {SNIPPET} && systemctl reload nginx")
