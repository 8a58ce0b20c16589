"""Behaviour of the pagure role, seen by contributors on devclient1.

review1 runs Pagure on PostgreSQL and Redis behind nginx (webfront) with its
certificate from the scenario's CA, git over SSH on port 2222; devclient1
holds alice's (core, commit access through infra-core) and bob's (no access)
SSH keys and their API tokens, and trusts the CA.
"""

import json
import os
import shlex
import uuid
from pathlib import Path

import pytest
import yaml
from devinfra_molecule import PKI_CA_FILE, converge_ok, host_fixtures, wait_for

SCENARIO = Path(os.environ["MOLECULE_SCENARIO_DIRECTORY"])
SECRETS = yaml.safe_load((SCENARIO / "vars" / "secrets.yaml").read_text())
TOKENS = SECRETS["pagure_test_tokens"]
CA = PKI_CA_FILE
BASE = "https://review1"
PROJECT = "devinfra/devinfra"
SSH_URL = f"ssh://_pagure@review1:2222/{PROJECT}.git"
BRANCH = "feature-" + uuid.uuid4().hex[:8]
MARK = "change " + uuid.uuid4().hex[:8]


globals().update(host_fixtures("review1", "devclient1"))


def api(host, method, path, token=None, data=None):
    """Call Pagure's API through the web front; return (http status, decoded JSON)."""
    args = ["-X", method]
    if token:
        args += ["-H", f"Authorization: token {token}"]
    for key, value in (data or {}).items():
        args += ["--data-urlencode", f"{key}={value}"]
    cmd = host.run(
        f"curl -sS --cacert {CA} --max-time 60 -w '\\n%{{http_code}}' "
        + " ".join(shlex.quote(a) for a in args) + " " + shlex.quote(f"{BASE}/api/0/{path}"))
    assert cmd.rc == 0, cmd.stderr
    body, _, status = cmd.stdout.rpartition("\n")
    return int(status), json.loads(body) if body.strip() else {}


def git(host, who, script):
    """Run a shell script in /root/work-<who> on devclient1 with <who>'s SSH key."""
    ssh = f"ssh -i /root/.ssh/{who} -o IdentitiesOnly=yes -o BatchMode=yes"
    return host.run(f"mkdir -p /root/work-{who} && cd /root/work-{who} && "
                    f"export GIT_SSH_COMMAND={shlex.quote(ssh)} && "
                    f"git config --global user.email {who}@example.org && "
                    f"git config --global user.name {who} && "
                    + script)


def test_web_ui_and_api_answer_over_tls(devclient1):
    status, answer = api(devclient1, "GET", "version")
    assert status == 200 and answer["version"], answer
    page = devclient1.run(f"curl -sS --cacert {CA} -o /dev/null -w '%{{http_code}}' {BASE}/{PROJECT}")
    assert page.stdout == "200"


def test_services_run_and_listen_where_they_should(review1):
    for unit in ("pagure-web", "pagure-worker", "pagure-webhook", "pagure-git-sshd", "redis-server", "nginx"):
        assert review1.service(unit).is_running, unit
    assert review1.socket("tcp://127.0.0.1:8090").is_listening
    assert not review1.socket("tcp://0.0.0.0:8090").is_listening
    assert review1.socket("tcp://0.0.0.0:2222").is_listening
    config = review1.file("/etc/pagure/pagure.cfg")
    assert (config.user, config.group, config.mode) == ("root", "_pagure", 0o640)


def test_project_users_and_core_group_are_as_declared(devclient1):
    status, project = api(devclient1, "GET", PROJECT)
    assert status == 200, project
    assert project["access_groups"]["commit"] == ["infra-core"]
    assert "zuul" in project["access_users"]["commit"]
    status, group = api(devclient1, "GET", "group/infra-core")
    assert status == 200 and [m for m in group["members"]] == ["alice"], group


def push_branch(host, who, branch, mark):
    """Clone over SSH as <who>, commit <mark> on a new <branch>, push it; return the push's result."""
    return git(host, who, f"""
        rm -rf {branch} && git clone -q {SSH_URL} {branch} && cd {branch}
        git checkout -q -b {branch}
        echo {shlex.quote(mark)} > CHANGE.txt && git add CHANGE.txt && git commit -q -m {shlex.quote(mark)}
        git push -q origin {branch}
    """)


@pytest.fixture(scope="module")
def master(devclient1):
    """The project's master branch: a new project is empty, so alice (a core) pushes its first commit."""
    seed = git(devclient1, "alice", f"""
        if git ls-remote --exit-code {SSH_URL} refs/heads/master >/dev/null; then exit 0; fi
        rm -rf seed && mkdir seed && cd seed && git init -q -b master
        echo '# devinfra' > README.md && git add README.md && git commit -q -m 'Start the project'
        git push -q {SSH_URL} master
    """)
    assert seed.rc == 0, seed.stderr


def test_a_core_pushes_a_branch_over_ssh_and_anyone_clones_over_https(devclient1, master):
    push = push_branch(devclient1, "alice", BRANCH, MARK)
    assert push.rc == 0, push.stderr
    clone = devclient1.run(f"rm -rf /root/https && GIT_SSL_CAINFO={CA} git clone -q -b {BRANCH} "
                           f"{BASE}/{PROJECT}.git /root/https && cat /root/https/CHANGE.txt")
    assert clone.rc == 0 and clone.stdout.strip() == MARK, clone.stderr


def test_a_contributor_without_commit_access_cannot_push(devclient1, master):
    push = push_branch(devclient1, "bob", "bob-" + BRANCH, "bob's change")
    assert push.rc != 0, "bob pushed to devinfra/devinfra without commit access"


def test_an_unknown_key_is_refused(devclient1):
    devclient1.run("rm -f /root/.ssh/stranger*; ssh-keygen -q -t ed25519 -N '' -f /root/.ssh/stranger")
    clone = git(devclient1, "stranger", f"rm -rf repo && git clone -q {SSH_URL} repo")
    assert clone.rc != 0 and "Permission denied" in clone.stderr, clone.stderr


@pytest.fixture(scope="module")
def pull_request(devclient1, master):
    """A pull request opened by alice through the API, from a branch she pushed."""
    branch = "pr-" + BRANCH
    assert push_branch(devclient1, "alice", branch, MARK).rc == 0
    status, answer = api(devclient1, "POST", f"{PROJECT}/pull-request/new", TOKENS["alice"],
                         {"title": MARK, "branch_to": "master", "branch_from": branch,
                          "initial_comment": "Opened by molecule"})
    assert status == 200, answer
    return answer["id"]


def test_a_pull_request_opened_through_the_api_is_listed(devclient1, pull_request):
    status, answer = api(devclient1, "GET", f"{PROJECT}/pull-request/{pull_request}")
    assert status == 200 and answer["title"] == MARK and answer["status"] == "Open", answer


def test_api_timestamps_are_whole_seconds_as_zuul_reads_them(devclient1, pull_request):
    """Debian's Pagure answers fractions unless the role's fix is applied (pagure_api_whole_seconds)."""
    status, _ = api(devclient1, "POST", f"{PROJECT}/pull-request/{pull_request}/comment", TOKENS["bob"],
                    {"comment": "A comment, for its timestamp"})
    assert status == 200
    _, answer = api(devclient1, "GET", f"{PROJECT}/pull-request/{pull_request}")
    stamps = [answer["date_created"], answer["last_updated"]]
    stamps += [c["date_created"] for c in answer["comments"]]
    assert answer["comments"] and all(stamp.isdigit() for stamp in stamps), stamps


@pytest.mark.parametrize("token", ["WRONG" + "0" * 59, "", "notatoken"])
def test_a_wrong_token_is_refused(devclient1, token):
    status, answer = api(devclient1, "POST", "-/whoami", token or "X")
    assert status == 401 and answer["error_code"] == "EINVALIDTOK", answer


def test_each_token_authenticates_its_user(devclient1):
    for user, token in TOKENS.items():
        status, answer = api(devclient1, "POST", "-/whoami", token)
        assert (status, answer.get("username")) == (200, user)


def test_an_expired_token_is_refused(review1, devclient1):
    """Pagure itself refuses a token past its expiry (the role renews those it declares)."""
    psql(review1, f"UPDATE tokens SET expiration = now() - interval '1 day' WHERE id = '{TOKENS['bob']}'")
    try:
        status, answer = api(devclient1, "POST", "-/whoami", TOKENS["bob"])
        assert status == 401 and answer["error_code"] == "EINVALIDTOK", answer
    finally:
        run = converge_ok()
        assert run.recap["review1"]["changed"] >= 1, "the converge did not renew the expired token"
    assert api(devclient1, "POST", "-/whoami", TOKENS["bob"])[0] == 200


def test_data_survives_a_restart_of_every_service(review1, devclient1, pull_request):
    review1.check_output("systemctl restart postgresql redis-server pagure-web pagure-worker pagure-git-sshd")
    wait_for(lambda: api(devclient1, "GET", "version")[0] == 200, 90, "Pagure's API after the restart")
    status, answer = api(devclient1, "GET", f"{PROJECT}/pull-request/{pull_request}")
    assert status == 200 and answer["title"] == MARK
    clone = git(devclient1, "alice", f"rm -rf again && git clone -q -b pr-{BRANCH} {SSH_URL} again "
                                     "&& cat again/CHANGE.txt")
    assert clone.rc == 0 and clone.stdout.strip() == MARK, clone.stderr


ALEMBIC = "cd /usr/share/pagure && runuser -u _pagure -- alembic -c /etc/pagure/alembic.ini"


def test_a_schema_behind_the_release_is_migrated_after_the_backup_hook(review1, devclient1, pull_request):
    """An upgraded Pagure package brings migrations: the role backs up first, then migrates."""
    review1.check_output(f"{ALEMBIC} downgrade -1")
    assert "(head)" not in review1.check_output(f"{ALEMBIC} current")
    run = converge_ok()
    assert "(head)" in review1.check_output(f"{ALEMBIC} current")
    out = run.stdout
    hook = out.index("TASK [backup_client : Find the registered sources among those named]")
    assert hook < out.index("TASK [pagure : Migrate Pagure's schema to the installed release]"), run.output()
    # review1 is no backup client here, so the hook says it loudly; the backup
    # itself is molecule/backup's test_a_role_backs_up_before_it_upgrades_data.
    assert "WARNING: review1 is no backup client" in out, run.output()
    status, answer = api(devclient1, "GET", f"{PROJECT}/pull-request/{pull_request}")
    assert status == 200 and answer["title"] == MARK


def test_a_rerun_changes_nothing_and_keeps_the_data(devclient1, pull_request):
    run = converge_ok()
    assert run.changed == 0, run.output()
    status, answer = api(devclient1, "GET", f"{PROJECT}/pull-request/{pull_request}")
    assert status == 200 and answer["status"] == "Open"


def test_check_mode_on_converged_hosts_reports_no_change(check_mode_is_clean):
    check_mode_is_clean()


def psql(host, sql):
    return host.check_output("runuser -u postgres -- psql -Atq -d pagure -c %s", sql)


def _live_state(review1):
    return (review1.check_output("sha256sum /etc/pagure/pagure.cfg /etc/pagure/sshd_config"),
            psql(review1, 'SELECT "user" FROM users ORDER BY 1'),
            psql(review1, "SELECT group_name FROM pagure_group ORDER BY 1"),
            psql(review1, "SELECT id, expiration FROM tokens ORDER BY 1"))


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"pagure_groups": [{"name": "infra-core", "members": []}]},
         "infra-core: has no members"),
        ({"pagure_tokens": [{"value": TOKENS["zuul"], "user": "zuul", "acls": ["pull_request_approve"]}]},
         "unknown: pull_request_approve"),
        ({"pagure_tokens": [{"value": "short", "user": "zuul", "acls": ["pull_request_merge"]}]},
         "must be 64 characters"),
        ({"pagure_projects": [{"name": "devinfra/devinfra", "groups": {"nobody-core": "commit"}}]},
         "devinfra/devinfra: the namespace must be"),
    ],
    ids=["core-group-without-members", "unknown-acl", "malformed-token", "unknown-group-on-project"],
)
def test_bad_input_fails_naming_the_entry_and_changes_nothing(bad_vars_change_nothing, review1, bad, message):
    bad_vars_change_nothing(bad, message, lambda: _live_state(review1))
