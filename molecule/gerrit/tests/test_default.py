"""Behaviour of the gerrit role behind the webfront role, on gerrit1.

No Gerrit release can be downloaded on these machines. Gerrit runs only
when DEVINFRA_GERRIT_WAR names a release file; without it, every test that
needs a running Gerrit is skipped with the reason (never reported as
passed), and the others test what the role applied without a release.
"""

import hashlib
import json
import os
import re
from pathlib import Path

import pytest
import yaml
from devinfra_molecule import host_fixtures

WAR = os.environ.get("DEVINFRA_GERRIT_WAR", "")
NO_RELEASE = (
    "SKIPPED: no Gerrit release file: set DEVINFRA_GERRIT_WAR=/path/to/gerrit.war; "
    "none can be downloaded on these machines"
)
SITE = "/var/lib/gerrit"
CA = "/etc/ssl/webfront/gerrit1.crt"
CURL = f"curl -sS --max-time 20 --cacert {CA}"
PROJECT = "devinfra/molecule-test"
ADMIN = "admin:secret"  # made by batch init in DEVELOPMENT_BECOME_ANY_ACCOUNT mode (converge.yaml)
CHANGE_ID = "I" + "0123456789abcdef" * 2 + "01234567"


def expected_version():
    if os.environ.get("DEVINFRA_GERRIT_VERSION"):
        return os.environ["DEVINFRA_GERRIT_VERSION"]
    defaults = Path(os.environ["MOLECULE_PROJECT_DIRECTORY"]) / "roles/gerrit/defaults/main.yaml"
    return yaml.safe_load(defaults.read_text())["gerrit_version"]


globals().update(host_fixtures("gerrit1"))


@pytest.fixture
def running_gerrit(gerrit1):
    """gerrit1, for the tests that need a running Gerrit: skipped without a release file."""
    if not WAR:
        pytest.skip(NO_RELEASE)
    return gerrit1


def xssi_json(text):
    """Gerrit's REST answers start with the )]}' line against XSSI."""
    assert text.startswith(")]}'"), text[:200]
    return json.loads(text[4:])


# --- What the role applies with or without a release -----------------------


def test_java_21_runtime(gerrit1):
    arch = gerrit1.check_output("dpkg --print-architecture")
    version = gerrit1.run(f"/usr/lib/jvm/java-21-openjdk-{arch}/bin/java -version")
    assert version.rc == 0, version.stderr
    assert re.search(r'version "21\.', version.stderr), version.stderr


def test_gerrit_system_user_owns_the_site(gerrit1):
    user = gerrit1.user("gerrit")
    assert user.exists
    assert user.uid < 1000, "a system user"
    assert user.shell == "/usr/sbin/nologin"
    assert user.home == SITE
    for path in (SITE, f"{SITE}/etc", f"{SITE}/git", f"{SITE}/plugins"):
        directory = gerrit1.file(path)
        assert directory.is_directory, path
        assert (directory.user, directory.group, directory.mode) == ("gerrit", "gerrit", 0o750), path


def test_without_a_release_nothing_of_gerrit_itself_is_installed(gerrit1):
    if WAR:
        pytest.skip("Gerrit is installed in this run (DEVINFRA_GERRIT_WAR is set)")
    for path in (f"{SITE}/bin/gerrit.war", f"{SITE}/etc/gerrit.config", "/etc/systemd/system/gerrit.service"):
        assert not gerrit1.file(path).exists, path


def test_the_proxy_serves_the_gerrit_vhost_over_https(gerrit1):
    head = gerrit1.check_output(f"{CURL} -D - -o /dev/null https://gerrit1/")
    status = int(head.split()[1])
    # 502 from nginx while no Gerrit runs behind it, Gerrit's page when it does.
    assert status == (200 if WAR else 502), head
    assert re.search(r"^strict-transport-security: max-age=\d+", head, re.M | re.I)
    redirect = gerrit1.check_output("curl -sS -o /dev/null -w '%{http_code} %{redirect_url}' http://gerrit1/q/")
    assert redirect == "301 https://gerrit1/q/"


def test_backup_is_registered_in_backup_d(gerrit1):
    source = json.loads(gerrit1.file("/etc/devinfra/backup.d/gerrit.json").content_string)
    assert source["command"] == ["/usr/local/bin/gerrit-backup"]
    assert source["paths"] == ["/var/backups/gerrit/latest"]
    backups = gerrit1.file("/var/backups/gerrit")
    assert (backups.user, backups.mode) == ("root", 0o700)


AS_GERRIT = f"runuser -u gerrit -- env HOME={SITE} sh -ec"
MAKE_REPOS = f"""
repo={SITE}/git/molecule-backup/project.git
git init -q --bare "$repo"
blob=$(echo hello | git -C "$repo" hash-object -w --stdin)
tree=$(printf '100644 blob %s\\tREADME\\n' "$blob" | git -C "$repo" mktree)
commit=$(git -C "$repo" -c user.name=t -c user.email=t@example.test commit-tree "$tree" -m first)
git -C "$repo" update-ref refs/heads/master "$commit"
git -C "$repo" update-ref refs/changes/01/1/1 "$commit"
# NoteDb keeps non-commit objects under refs too (change number sequence).
git -C "$repo" update-ref refs/sequences/changes "$(echo 42 | git -C "$repo" hash-object -w --stdin)"
git init -q --bare {SITE}/git/molecule-backup/empty.git
"""


def test_backup_is_a_restorable_copy_and_old_ones_are_pruned(gerrit1):
    gerrit1.run_expect([0], AS_GERRIT + " %s", MAKE_REPOS)
    try:
        out = gerrit1.run("/usr/local/bin/gerrit-backup")
        assert out.rc == 0, out.stderr
        latest = "/var/backups/gerrit/latest"
        assert out.stdout.strip() == f"gerrit-backup: {gerrit1.check_output(f'readlink -f {latest}')}"
        gerrit1.run_expect([0], f"cd {latest} && sha256sum --quiet -c SHA256SUMS")
        assert gerrit1.file(f"{latest}/git/molecule-backup/empty.git.empty").exists
        bundle = f"{latest}/git/molecule-backup/project.git.bundle"
        gerrit1.run_expect([0], f"rm -rf /tmp/verify.git && git init -q --bare /tmp/verify.git"
                                f" && git -C /tmp/verify.git bundle verify {bundle}")
        restored = gerrit1.run(f"rm -rf /tmp/restored.git && git clone -q --mirror {bundle} /tmp/restored.git"
                               " && git -C /tmp/restored.git for-each-ref")
        original = gerrit1.run("git -c safe.directory='*' -C %s for-each-ref",
                               f"{SITE}/git/molecule-backup/project.git")
        assert restored.rc == 0, restored.stderr
        assert restored.stdout == original.stdout
        assert "refs/sequences/changes" in restored.stdout
        assert re.search(r"^etc/$", gerrit1.check_output(f"tar -tzf {latest}/site.tar.gz"), re.M)
        assert gerrit1.file(f"{latest}/site.tar.gz").mode == 0o600
        # Older copies beyond the number to keep are removed.
        for _ in range(2):
            gerrit1.run_expect([0], "GERRIT_BACKUP_KEEP=2 /usr/local/bin/gerrit-backup")
        copies = gerrit1.check_output(
            "find /var/backups/gerrit -mindepth 1 -maxdepth 1 -type d -printf '%f\\n'")
        assert len(copies.split()) == 2, copies
        assert gerrit1.check_output(f"readlink {latest}") == max(copies.split())
    finally:
        gerrit1.run(f"rm -rf {SITE}/git/molecule-backup /tmp/restored.git /tmp/verify.git")


# --- A running Gerrit (skipped without a release file) ----------------------


def test_gerrit_runs_the_release_with_the_configured_heap(running_gerrit):
    service = running_gerrit.service("gerrit")
    assert service.is_running and service.is_enabled
    command_line = running_gerrit.check_output(
        "tr '\\0' ' ' < /proc/$(systemctl show --property MainPID --value gerrit)/cmdline")
    assert "-Xmx512m" in command_line
    marker = json.loads(running_gerrit.file(f"{SITE}/devinfra-release.json").content_string)
    assert marker["version"] == expected_version()
    assert marker["war_sha256"] == hashlib.sha256(Path(WAR).read_bytes()).hexdigest()
    secure = running_gerrit.file(f"{SITE}/etc/secure.config")
    assert (secure.user, secure.mode) == ("gerrit", 0o600)


def test_site_keeps_its_server_id_and_the_managed_config(running_gerrit):
    config = running_gerrit.check_output(f"git config -f {SITE}/etc/gerrit.config --list")
    assert re.search(r"^gerrit\.serverid=\S+", config, re.M), "init's serverId was kept"
    assert "httpd.listenurl=proxy-https://127.0.0.1:8081/" in config
    replication = running_gerrit.check_output(f"git config -f {SITE}/etc/replication.config --list")
    assert "remote.local-mirror.url=/var/lib/gerrit-mirror/${name}.git" in replication


def test_web_ui_answers_through_the_proxy(running_gerrit):
    page = running_gerrit.check_output(f"{CURL} https://gerrit1/")
    assert "gr-app" in page


def test_rest_api_answers_its_version_through_the_proxy(running_gerrit):
    answer = running_gerrit.check_output(f"{CURL} https://gerrit1/config/server/version")
    assert xssi_json(answer) == expected_version()


def test_http_listens_on_loopback_only(running_gerrit):
    listeners = running_gerrit.check_output("ss -Hltn")
    assert re.search(r"\s127\.0\.0\.1:8081\s", listeners), listeners
    assert not re.search(r"\s(0\.0\.0\.0|\*|\[::\]):8081\s", listeners), listeners


def test_ssh_answers_on_29418_with_gerrits_banner(running_gerrit):
    banner = running_gerrit.check_output(
        "python3 -c 'import socket; s = socket.create_connection((\"gerrit1\", 29418), 10); "
        "print(s.recv(256).decode().strip())'")
    assert banner.startswith("SSH-2.0-GerritCodeReview"), banner


def project_exists(host):
    answer = host.run(f"{CURL} -u {ADMIN} https://gerrit1/a/projects/{PROJECT.replace('/', '%2F')}")
    return answer.rc == 0 and xssi_json(answer.stdout).get("name") == PROJECT


def test_project_made_by_gerrit_project_exists_and_clones_over_https(running_gerrit):
    assert project_exists(running_gerrit)
    git = f"GIT_SSL_CAINFO={CA} git -c user.name=Administrator -c user.email=admin@example.com"
    # A commit pushed over HTTPS (as the admin) comes back in a fresh clone:
    # git's smart HTTP protocol works through the proxy.
    roundtrip = running_gerrit.run(
        f"set -e; rm -rf /tmp/clone /tmp/clone2; {git} clone -q https://gerrit1/{PROJECT} /tmp/clone; "
        f"{git} -C /tmp/clone commit -q --allow-empty -m 'molecule test commit' -m 'Change-Id: {CHANGE_ID}'; "
        f"{git} -C /tmp/clone push -q https://{ADMIN}@gerrit1/{PROJECT} HEAD:refs/heads/master; "
        f"{git} clone -q https://gerrit1/{PROJECT} /tmp/clone2; "
        "test \"$(git -C /tmp/clone rev-parse HEAD)\" = \"$(git -C /tmp/clone2 rev-parse HEAD)\"")
    assert roundtrip.rc == 0, roundtrip.stdout + roundtrip.stderr


def test_data_survives_a_restart(running_gerrit):
    running_gerrit.run_expect([0], "systemctl restart gerrit")
    running_gerrit.run_expect([0], (
        "for i in $(seq 120); do curl -sf -o /dev/null http://127.0.0.1:8081/config/server/version"
        " && exit 0; sleep 1; done; exit 1"))
    assert project_exists(running_gerrit)


# --- Idempotence of check mode, and a bad release ---------------------------


def test_check_mode_on_the_converged_host_reports_no_change(check_mode_is_clean):
    check_mode_is_clean()


SNAPSHOT = (
    "find /var/lib/gerrit /etc/systemd/system /usr/local/bin /etc/devinfra /var/backups/gerrit"
    " -printf '%p %m %u %s %T@\\n' | sort | sha256sum; dpkg-query -W | sha256sum; getent passwd | sha256sum")


@pytest.mark.parametrize(
    ("source", "message"),
    [("path", "does not match gerrit_war_sha256"), ("url", "did not match")],
    ids=["local-file", "download"],
)
def test_release_with_a_wrong_checksum_fails_before_anything_changes(
        bad_vars_change_nothing, gerrit1, tmp_path, source, message):
    release = tmp_path / "gerrit-9.9.9.war"
    release.write_bytes(b"not the published release\n")
    extra = {
        "gerrit_install_war": True,
        "gerrit_version": "9.9.9",
        "gerrit_war_sha256": hashlib.sha256(b"the published release\n").hexdigest(),
        "gerrit_war_path": str(release) if source == "path" else "",
        "gerrit_war_url": release.as_uri(),
        "gerrit_download_dir": str(tmp_path / "cache"),
        # A site and user that do not exist yet: any step past the check would make them.
        "gerrit_site": "/srv/gerrit-never",
        "gerrit_user": "gerrit-never",
        "gerrit_group": "gerrit-never",
    }
    bad_vars_change_nothing(extra, message, lambda: gerrit1.check_output(SNAPSHOT))
    assert not gerrit1.user("gerrit-never").exists
    assert not gerrit1.file("/srv/gerrit-never").exists
    assert not list(tmp_path.glob("cache/*.war")), "nothing kept of the mismatching download"
