"""Behaviour of the mirror_update role: a mirror of two of three upstream packages.

upstream1 serves a small signed APT repository built in prepare.yaml
(mirtest-alpha, -beta and -gamma) through a server the tests can slow down;
mirrorupd1 mirrors alpha and beta with the role and serves its published
directory over HTTP; aptclient1 uses the mirror with its key (signed-by).

The tests run in file order: later ones build on the versions earlier ones
added upstream.
"""

import json
import time

import pytest
from devinfra_molecule import host_fixtures, run_converge, wait_for

PUBLISHED = "/srv/mirror-update/published/mirtest"
RELEASES = "/srv/mirror-update/releases/mirtest"
UPDATE = "/usr/local/sbin/mirror-update"
# What the published repository is: where the symlink points and every index file.
SNAPSHOT = (f"readlink {PUBLISHED} && cd {PUBLISHED}/ && "
            "find dists -type f -print0 | sort -z | xargs -0 sha256sum")
# The list converge.yaml mirrors.
LISTED = ["mirtest-alpha", "mirtest-beta"]
# mirror-update's node exporter textfile.
TEXTFILE = "/var/lib/prometheus/node-exporter/mirror_update.prom"


globals().update(host_fixtures(upstream="upstream1", mirror="mirrorupd1", client="aptclient1"))


def apt_update(client):
    # --error-on=any: a signature problem (a warning by default) fails it.
    cmd = client.run("apt-get update --error-on=any")
    assert cmd.rc == 0, cmd.stdout + cmd.stderr
    return cmd


def candidate(client, package):
    policy = client.check_output("apt-cache policy %s", package)
    for line in policy.splitlines():
        if line.strip().startswith("Candidate:"):
            return line.split(":", 1)[1].strip()
    return None


def installed_version(client, package):
    return client.check_output("dpkg-query -W -f '${Version}' %s", package)


def update(mirror):
    """Start mirror-update.service and wait for it (a oneshot): the command."""
    return mirror.run("systemctl start mirror-update.service")


def service_state(mirror):
    """ActiveState of mirror-update.service: a oneshot that runs is "activating"."""
    return mirror.check_output("systemctl show -P ActiveState mirror-update.service")


def metrics(mirror):
    """The textfile's samples of the mirtest repository: {metric: value}."""
    found = {}
    for line in mirror.file(TEXTFILE).content_string.splitlines():
        if line.startswith('mirror_update_') and '{repository="mirtest"}' in line:
            name, value = line.split('{repository="mirtest"} ')
            found[name] = float(value)
    return found


def reprepro_update_running(mirror):
    """Whether a `reprepro ... update` process runs on the mirror (no procps there)."""
    cmd = mirror.run(
        "for p in /proc/[0-9]*; do tr '\\0' ' ' < $p/cmdline 2>/dev/null; echo; done "
        "| grep -q '^reprepro .* update'")
    return cmd.rc == 0


def test_client_installs_a_mirrored_package_with_the_signature_verified(client):
    apt_update(client)
    assert candidate(client, "mirtest-alpha") == "1.0"
    cmd = client.run("apt-get install -y mirtest-alpha")
    assert cmd.rc == 0, cmd.stdout + cmd.stderr
    assert installed_version(client, "mirtest-alpha") == "1.0"
    assert client.file("/usr/share/mirtest-alpha/version").content_string == "mirtest-alpha 1.0\n"


def test_the_mirror_is_refused_with_another_key(client, upstream):
    # The same sources line signed-by the upstream's key instead of the
    # mirror's: apt must refuse the mirror's InRelease.
    wrong = upstream.file("/srv/upstream/upstream.asc").content_string
    client.run_expect([0], "mkdir -p /tmp/wrongkey/lists/partial && printf '%%s' %s > /tmp/wrongkey/key.asc",
                      wrong)
    line = "deb [signed-by=/tmp/wrongkey/key.asc] http://mirrorupd1/mirtest trixie main"
    client.run_expect([0], "echo %s > /tmp/wrongkey/sources.list", line)
    cmd = client.run("apt-get update --error-on=any -o Dir::Etc::SourceList=/tmp/wrongkey/sources.list "
                     "-o Dir::Etc::SourceParts=/nonexistent -o Dir::State::Lists=/tmp/wrongkey/lists")
    assert cmd.rc != 0
    assert "InRelease' is not signed" in cmd.stderr, cmd.stdout + cmd.stderr
    assert "OpenPGP signature verification failed" in cmd.stderr, cmd.stderr


def test_a_package_not_listed_is_not_mirrored(client, mirror):
    # mirtest-gamma is upstream (the client can read upstream's index) ...
    upstream_index = client.check_output(
        "python3 -c \"import urllib.request; print(urllib.request.urlopen("
        "'http://upstream1/debian/dists/trixie/main/binary-amd64/Packages').read().decode())\"")
    assert "Package: mirtest-gamma" in upstream_index
    # ... but neither in the mirror's index nor its pool, and apt cannot install it.
    assert "mirtest-gamma" not in mirror.file(
        f"{PUBLISHED}/dists/trixie/main/binary-amd64/Packages").content_string
    assert not mirror.file(f"{PUBLISHED}/pool/main/m/mirtest-gamma").exists
    cmd = client.run("apt-get install -y mirtest-gamma")
    assert cmd.rc != 0
    assert "Unable to locate package mirtest-gamma" in cmd.stderr, cmd.stderr


def test_published_is_a_symlink_to_a_complete_release(mirror):
    link = mirror.file(PUBLISHED)
    assert link.is_symlink
    assert link.linked_to.startswith(f"{RELEASES}/")
    # The public key is served next to the repositories, and it verifies the index.
    cmd = mirror.run(f"gpgv --keyring /srv/mirror-update/published/mirror-update-keyring.gpg "
                     f"{PUBLISHED}/dists/trixie/InRelease")
    assert cmd.rc == 0, cmd.stderr


def test_the_timer_is_active(mirror):
    timer = mirror.service("mirror-update.timer")
    assert timer.is_enabled
    assert timer.is_running
    assert "mirror-update.service" in mirror.check_output("systemctl list-timers --all mirror-update.timer")


def test_the_update_runs_in_the_sandbox_of_its_drop_in(mirror):
    """roles/systemd_hardening's drop-in is the unit's sandbox (the unit file has none)."""
    assert "ProtectSystem" not in mirror.file("/etc/systemd/system/mirror-update.service").content_string
    wanted = {
        "NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
        "PrivateTmp": "yes", "PrivateDevices": "yes", "ProtectKernelLogs": "yes",
        "RestrictNamespaces": "yes", "MemoryDenyWriteExecute": "yes",
        # Root keeps only what apt's download methods need to switch to _apt.
        "CapabilityBoundingSet": "cap_setgid cap_setuid", "AmbientCapabilities": "",
        "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
        "DropInPaths": "/etc/systemd/system/mirror-update.service.d/hardening.conf",
    }
    properties = " ".join(f"-p {name}" for name in wanted)
    shown = mirror.check_output(f"systemctl show mirror-update.service {properties}").splitlines()
    assert dict(line.split("=", 1) for line in shown) == wanted


def test_a_new_upstream_version_reaches_the_client(upstream, mirror, client):
    upstream.run_expect([0], "upstream-repo add mirtest-alpha 1.1")
    before = mirror.file(PUBLISHED).linked_to
    cmd = update(mirror)
    assert cmd.rc == 0, cmd.stderr + mirror.check_output("journalctl -u mirror-update -n 30 --no-pager")
    assert mirror.file(PUBLISHED).linked_to != before
    # The release before is kept for clients that read its indexes a moment ago.
    assert mirror.file(before).is_directory
    apt_update(client)
    assert candidate(client, "mirtest-alpha") == "1.1"
    client.run_expect([0], "apt-get install -y mirtest-alpha")
    assert installed_version(client, "mirtest-alpha") == "1.1"


def test_an_update_records_its_success_time_for_the_node_exporter(mirror):
    before = float(mirror.check_output("date +%s.%N"))
    assert update(mirror).rc == 0
    found = metrics(mirror)
    success = found["mirror_update_last_success_timestamp_seconds"]
    assert before <= success <= before + 300
    assert found["mirror_update_last_run_timestamp_seconds"] == success
    assert found["mirror_update_last_run_failed"] == 0
    text = mirror.file(TEXTFILE).content_string
    assert "# TYPE mirror_update_last_success_timestamp_seconds gauge" in text
    assert mirror.file(TEXTFILE).mode == 0o644 and mirror.file(TEXTFILE).user == "root"


def test_an_update_without_change_publishes_nothing_new(mirror):
    before = mirror.file(PUBLISHED).linked_to
    cmd = update(mirror)
    assert cmd.rc == 0, cmd.stderr
    assert mirror.file(PUBLISHED).linked_to == before
    assert "no change" in mirror.check_output("journalctl -u mirror-update -n 5 --no-pager")


@pytest.fixture(scope="module")
def slow_update(upstream, mirror):
    """An update caught in the middle of a 4 MiB download from a throttled upstream.

    Yields the published snapshot taken before it started.
    """
    before = mirror.check_output(SNAPSHOT)
    upstream.run_expect([0], "upstream-repo add mirtest-beta 1.1 4096")
    upstream.run_expect([0], "touch /run/upstream-slow")
    mirror.run_expect([0], "systemctl start --no-block mirror-update.service")
    wait_for(lambda: reprepro_update_running(mirror), 30, "reprepro update to start", interval=0.5)
    time.sleep(2)
    assert reprepro_update_running(mirror), "the update finished too early for the test"
    yield before
    upstream.run("rm -f /run/upstream-slow")


def test_a_second_update_during_one_exits_clearly_and_changes_nothing(mirror, slow_update):
    cmd = mirror.run(UPDATE)
    assert cmd.rc == 75, cmd.stderr
    assert "another mirror-update is running" in cmd.stderr
    assert service_state(mirror) == "activating"
    assert mirror.check_output(SNAPSHOT) == slow_update


def test_a_killed_update_leaves_the_published_repository_intact(mirror, client, slow_update):
    assert service_state(mirror) == "activating", "the update is not running any more"
    mirror.run_expect([0], "systemctl kill --signal=KILL mirror-update.service")
    wait_for(lambda: service_state(mirror) == "failed", 30, "the update to die", interval=0.5)
    assert mirror.check_output("systemctl show -P Result mirror-update.service") == "signal"
    assert not reprepro_update_running(mirror)
    # Byte-identical indexes, same release, and apt still installs from it.
    assert mirror.check_output(SNAPSHOT) == slow_update
    apt_update(client)
    assert candidate(client, "mirtest-beta") == "1.0"
    cmd = client.run("apt-get install -y mirtest-beta")
    assert cmd.rc == 0, cmd.stdout + cmd.stderr
    assert installed_version(client, "mirtest-beta") == "1.0"


def test_the_next_update_after_a_kill_succeeds(upstream, mirror, client, slow_update):
    upstream.run_expect([0], "rm -f /run/upstream-slow")
    cmd = update(mirror)
    assert cmd.rc == 0, mirror.check_output("journalctl -u mirror-update -n 30 --no-pager")
    apt_update(client)
    client.run_expect([0], "apt-get install -y mirtest-beta")
    assert installed_version(client, "mirtest-beta") == "1.1"
    assert client.file("/usr/share/mirtest-beta/payload").size == 4096 * 1024
    # Three releases were made (1.0, alpha 1.1, beta 1.1); the oldest is
    # pruned to mirror_update_keep_releases (2 in converge.yaml), never the
    # published one; partial copies of the killed run are gone.
    releases = mirror.check_output(f"ls -A {RELEASES}").split()
    assert len(releases) == 2, releases
    assert mirror.file(PUBLISHED).linked_to.rsplit("/", 1)[1] in releases
    assert not [r for r in releases if r.endswith(".partial")]


def test_a_listed_package_missing_upstream_fails_naming_it_and_changes_nothing(mirror, client):
    before = mirror.check_output(SNAPSHOT)
    run, _ = run_converge("-e", json.dumps({"mirror_update_test_packages": [*LISTED, "mirtest-nonexistent"]}))
    try:
        assert run.returncode != 0
        output = run.stdout + run.stderr
        assert "not found upstream: mirtest-nonexistent (trixie)" in output, run.stdout[-3000:]
        assert mirror.check_output(SNAPSHOT) == before
        # The timer's service fails the same way, and says so in the journal.
        succeeded = metrics(mirror)["mirror_update_last_success_timestamp_seconds"]
        assert update(mirror).rc != 0
        journal = mirror.check_output("journalctl -u mirror-update -n 20 --no-pager")
        assert "not found upstream: mirtest-nonexistent" in journal
        assert mirror.check_output(SNAPSHOT) == before
        # The textfile tells the failure and keeps the last success.
        found = metrics(mirror)
        assert found["mirror_update_last_run_failed"] == 1
        assert found["mirror_update_last_success_timestamp_seconds"] == succeeded
        assert found["mirror_update_last_run_timestamp_seconds"] > succeeded
        apt_update(client)
        client.run_expect([0], "apt-get install -y --reinstall mirtest-alpha")
    finally:
        restore, _ = run_converge()
    assert restore.returncode == 0, restore.stdout[-3000:]
    assert update(mirror).rc == 0
    assert metrics(mirror)["mirror_update_last_run_failed"] == 0


def test_check_mode_on_converged_hosts_reports_no_change(check_mode_is_clean):
    check_mode_is_clean(expect_hosts=["aptclient1", "mirrorupd1"])


REPO = {
    "name": "other", "url": "http://upstream1/debian", "suites": ["trixie"], "packages": ["mirtest-alpha"],
    "upstream_key": "-----BEGIN PGP PUBLIC KEY BLOCK-----\nx\n-----END PGP PUBLIC KEY BLOCK-----",
    "upstream_key_fingerprint": "0" * 40,
}


@pytest.mark.parametrize(
    ("extra_vars", "message"),
    [
        ({"mirror_update_keep_releases": "many"}, "mirror_update_keep_releases"),
        ({"mirror_update_repositories": [{**REPO, "pakages": ["mirtest-alpha"]}]}, "pakages"),
        ({"mirror_update_repositories": [{**REPO, "suites": "trixie"}]},
         "(name: other): suites must be a list"),
        ({"mirror_update_test_packages": ["mirtest-alpha", "Not A Package"]},
         "packages entry Not A Package is not a Debian package name"),
        ({"mirror_update_repositories": [{**REPO, "upstream_key_fingerprint": "ABCD"}]},
         "upstream_key_fingerprint must be 40 hex digits"),
        ({"mirror_update_repositories": [REPO, REPO]},
         "mirror_update_repositories: other is listed more than once"),
        ({"mirror_update_publish_dir": "/var/lib/mirror-update/pub"},
         "mirror_update_publish_dir must not be (inside) mirror_update_work_dir"),
        ({"mirror_update_on_calendar": "every tuesday"}, "Failed to parse calendar specification"),
    ],
    ids=["wrong-type", "unknown-key", "suites-not-a-list", "bad-package-name", "short-fingerprint",
         "duplicate-name", "nested-dirs", "bad-calendar"],
)
def test_bad_variables_fail_before_any_host_changes(bad_vars_change_nothing, mirror, extra_vars, message):
    files = f"{SNAPSHOT} && sha256sum /var/lib/mirror-update/repos/mirtest/conf/* {UPDATE}"
    bad_vars_change_nothing(extra_vars, message, lambda: mirror.check_output(files))
    assert not mirror.file("/var/lib/mirror-update/repos/other").exists
