"""A hostile job's logs: links are not published or followed, its scripts run in no one's origin.

The job leaves in ~/logs on node01 a link to /etc/passwd, a link to /etc
and an HTML page with a script, and on the executor (its own localhost
task) a link in the log root too. Published logs must hold none of the
links and none of their targets; the page must be served from the logs'
own host name (logs.zuul01), sandboxed, and not from the web UI's.
"""

import secrets

import pytest
from zuul_platform import CURL, commit_files, logs_curl, wait_for_build

PAGE = "<html><body><script>document.title = 'ran'; fetch('/api/tenants');</script></body></html>"


@pytest.fixture(scope="module")
def hostile(zuul01, client):
    token = secrets.token_hex(8)
    sha = commit_files(zuul01, {
        ".zuul.yaml": ("- job:\n    name: hostile-logs\n    run: playbooks/hostile.yaml\n"
                       "- project:\n    post:\n      jobs: [hostile-logs]\n"),
        "playbooks/hostile.yaml": (
            "- hosts: all\n  tasks:\n"
            "    - name: Leave links and a page with a script in the logs\n"
            "      ansible.builtin.shell: |\n"
            "        ln -s /etc/passwd ~/logs/passwd\n"
            "        ln -s /etc ~/logs/etc\n"
            f"        printf '%s' \"{PAGE}\" > ~/logs/page.html\n"
            f"        echo {token} > ~/logs/token.txt\n"
            "- hosts: localhost\n  tasks:\n"
            "    - name: Leave a link in the executor's log root\n"
            "      ansible.builtin.file:\n"
            "        src: /etc/hostname\n"
            "        dest: \"{{ zuul.executor.log_root }}/executor-link\"\n"
            "        state: link\n"
            "      failed_when: false\n"),
        "marker.txt": f"{token}\n",
    }, f"hostile logs {token}")
    build = wait_for_build(client, sha)
    return token, build


def test_the_build_ran_and_published_its_regular_files(hostile, client):
    token, build = hostile
    assert build["result"] == "SUCCESS", build
    assert client.check_output(f"{logs_curl(client)} {build['log_url']}node/token.txt").strip() == token


def test_no_link_is_published(hostile, zuul01):
    _token, build = hostile
    published = f"/srv/zuul-logs/{build['uuid']}"
    assert zuul01.file(f"{published}/node/token.txt").exists
    assert zuul01.check_output(f"find {published} -type l") == ""
    assert zuul01.run(f"grep -rl 'root:x:0:0' {published}").stdout == ""
    for name in ("node/passwd", "node/etc", "executor-link"):
        assert not zuul01.file(f"{published}/{name}").exists, name


def test_the_links_targets_are_not_served(hostile, client):
    _token, build = hostile
    for path in ("node/passwd", "node/etc/passwd", "executor-link"):
        # Without --fail: the body of any answer, error pages included, is kept.
        curl = logs_curl(client).replace(" --fail", "")
        out = client.run(f"rm -f /tmp/hostile-body; {curl} -o /tmp/hostile-body -w '%{{http_code}}' "
                         f"{build['log_url']}{path}")
        assert out.stdout in ("403", "404"), (path, out.stdout, out.stderr)
        assert "root:x:0:0" not in client.run("cat /tmp/hostile-body").stdout


def test_the_page_is_served_sandboxed_from_the_logs_own_host_name(hostile, client):
    _token, build = hostile
    assert build["log_url"].startswith("https://logs.zuul01/"), build
    head = client.check_output(f"{logs_curl(client)} -D - -o /dev/null {build['log_url']}node/page.html")
    headers = {line.split(":", 1)[0].lower(): line.split(":", 1)[1].strip()
               for line in head.splitlines() if ":" in line}
    # sandbox without allow-scripts: no script runs; without allow-same-origin: an opaque origin.
    assert headers.get("content-security-policy") == "sandbox", head
    assert headers.get("access-control-allow-origin") == "*", head


def test_the_web_uis_origin_serves_no_log(hostile, client):
    _token, build = hostile
    path = build["log_url"].removeprefix("https://logs.zuul01/")
    # zuul-web answers unknown paths with its own page; the job's is not among them.
    for url in (f"https://zuul01/logs/{path}node/page.html", f"https://zuul01/{path}node/page.html"):
        body = client.run(f"{CURL} {url}").stdout
        assert "document.title = 'ran'" not in body, url
    # ... and the logs' host name serves no API.
    out = client.run(f"{logs_curl(client)} -o /dev/null -w '%{{http_code}}' https://logs.zuul01/api/tenants")
    assert out.stdout == "404", out.stdout
