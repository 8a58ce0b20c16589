"""Backups off the host: a borg server, two clients, playbooks/service-backup.yaml.

Order matters in this module (pytest runs it top to bottom): the first
tests write archives, the prune test counts them, the append-only test
deletes one and rolls the deletion back.
"""

from __future__ import annotations

import json
import re
import shlex

import pytest
from devinfra_molecule import host_fixtures, run_playbook, scenario_directory

globals().update(host_fixtures("backup1", "client1", "client2"))

ROOT = "/var/lib/borg-backups"
SERVER_TEXTFILE = "/var/lib/prometheus/node-exporter/devinfra_backup_server.prom"
CLIENT_TEXTFILE = "/var/lib/prometheus/node-exporter/devinfra_backup.prom"


def archives(host, source=None, server=None):
    args = ["devinfra-backup", "list"] + (["--source", source] if source else []) + \
        (["--server", server] if server else [])
    out = host.check_output(shlex.join(args))
    return [json.loads(line)["archive"] for line in out.splitlines() if line.strip()]


def server_archives(backup1, client):
    out = backup1.check_output(f"backup-server list --client {client}")
    return sorted(json.loads(line)["archive"] for line in out.splitlines() if line.strip())


def raw_borg(host, *args):
    """borg as an attacker on the client would run it: its key, its passphrase, any command."""
    rsh = ("ssh -i /etc/devinfra/backup/id_ed25519 -o IdentitiesOnly=yes -o BatchMode=yes"
           " -o UserKnownHostsFile=/etc/devinfra/backup/known_hosts")
    return host.run(
        f"BORG_PASSPHRASE=$(cat /etc/devinfra/backup/passphrase) BORG_RSH={shlex.quote(rsh)} "
        f"BORG_BASE_DIR=/var/lib/devinfra-backup/borg borg {shlex.join(args)}")


def test_each_client_has_an_append_only_repository_of_its_own(backup1):
    for client in ("client1", "client2"):
        keys = backup1.file(f"{ROOT}/{client}/.ssh/authorized_keys")
        assert keys.user == "root" and keys.mode == 0o644
        assert re.search(rf'command="borg serve --append-only --restrict-to-repository {ROOT}/{client}/repo '
                         r'--storage-quota \d+[KMGT]?",restrict ssh-ed25519 ', keys.content_string)
        home = backup1.file(f"{ROOT}/{client}")
        assert home.user == f"borg-{client}" and home.mode == 0o700
        # made by the client's `devinfra-backup init` during the converge
        assert backup1.file(f"{ROOT}/{client}/repo/config").exists


def test_the_clients_private_directory_leaves_etc_devinfra_open(client1, client2):
    """/etc/devinfra/backup is 0700; /etc/devinfra, made by the same task on a new host, must stay 0755
    (a restore drill's scratch host: postgres could not read the pki role's pki_dir)."""
    for host in (client1, client2):
        assert host.file("/etc/devinfra").mode == 0o755
        assert host.file("/etc/devinfra/backup").mode == 0o700


def test_a_backup_run_writes_an_archive_per_source_that_reads_back(client1):
    result = client1.run("devinfra-backup run")
    assert result.rc == 0, result.stderr
    names = archives(client1)
    assert any(n.startswith("data.") for n in names) and any(n.startswith("dump.") for n in names), names
    client1.run("rm -rf /tmp/restore-test /tmp/restore-dump")
    out = client1.check_output("devinfra-backup extract --source data --target /tmp/restore-test")
    assert json.loads(out)["archive"] == archives(client1, "data")[-1]
    restored = client1.file("/tmp/restore-test/srv/data/pad.txt").content_string
    assert restored == "the text of a pad on client1\n"
    # the dump's `latest` link was archived as the directory it points at
    assert client1.run("devinfra-backup extract --source dump --target /tmp/restore-dump "
                       "&& test -s /tmp/restore-dump/var/backups/test/1/dump").rc == 0


def test_the_timer_runs_the_backup_through_systemd(client2):
    assert client2.service("devinfra-backup.timer").is_enabled
    assert client2.service("devinfra-backup.timer").is_running
    result = client2.run("systemctl start devinfra-backup.service")
    assert result.rc == 0, client2.run("journalctl -u devinfra-backup.service --no-pager | tail -20").stdout
    assert any(n.startswith("data.") for n in archives(client2))


def test_the_last_success_is_in_the_node_exporter_textfile(client1):
    text = client1.file(CLIENT_TEXTFILE).content_string
    stamps = dict(re.findall(r'devinfra_backup_last_success_timestamp_seconds\{server="backup1",'
                             r'source="([\w-]+)"\} ([0-9.e+]+)', text))
    now = float(client1.check_output("date +%s"))
    # the tests' two sources and the role's own: the host's SSH identity
    assert set(stamps) == {"data", "dump", "host-identity"}, text
    assert all(now - 600 < float(v) <= now + 5 for v in stamps.values()), text
    assert 'devinfra_backup_last_run_success{server="backup1",source="data"} 1' in text


def ssh_to(host, user, key="/etc/devinfra/backup/id_ed25519", command="true"):
    return host.run(f"ssh -i {key} -o IdentitiesOnly=yes -o BatchMode=yes"
                    f" -o UserKnownHostsFile=/etc/devinfra/backup/known_hosts"
                    f" {user}@backup1 {command} </dev/null")


def test_a_client_cannot_reach_another_clients_repository(client1, client2):
    # Its own key, the other client's user: refused by sshd.
    other_user = ssh_to(client2, "borg-client1")
    assert other_user.rc == 255 and "Permission denied (publickey" in other_user.stderr, other_user.stderr
    # Its own user, the other client's path: refused by borg serve.
    other_path = raw_borg(client2, "list", f"ssh://borg-client2@backup1{ROOT}/client1/repo")
    refused = "path not allowed" in other_path.stderr.lower()
    assert other_path.rc != 0 and refused, other_path.stderr


def test_a_wrong_key_is_refused_and_no_key_gets_a_shell(client1):
    client1.run("rm -f /tmp/other-key*; ssh-keygen -q -t ed25519 -N '' -f /tmp/other-key")
    wrong = ssh_to(client1, "borg-client1", key="/tmp/other-key")
    assert wrong.rc == 255 and "Permission denied (publickey" in wrong.stderr, wrong.stderr
    # The right key runs borg serve whatever is asked for.
    shell = ssh_to(client1, "borg-client1", command="cat /etc/passwd")
    assert "root:x:0:0" not in shell.stdout, shell.stdout


def test_prune_on_the_server_keeps_what_the_policy_says(client1, backup1):
    for _ in range(2):
        assert client1.run("devinfra-backup run").rc == 0
    before = server_archives(backup1, "client1")
    sources = ("data", "dump", "host-identity")
    by_source = {s: sorted(n for n in before if n.startswith(s + ".")) for s in sources}
    assert all(len(names) >= 3 for names in by_source.values()), before
    result = backup1.run("backup-server maintain")
    assert result.rc == 0, result.stderr
    # backup_server_keep: {last: 2}, per source
    kept = sorted(n for names in by_source.values() for n in names[-2:])
    assert server_archives(backup1, "client1") == kept
    text = backup1.file(SERVER_TEXTFILE).content_string
    assert 'devinfra_backup_server_tampered{client="client1"} 0' in text
    assert 'devinfra_backup_server_archives{client="client1"} 6' in text


def test_a_client_can_neither_delete_nor_overwrite_its_archives(client1, backup1):
    ledger = server_archives(backup1, "client1")
    victim = next(n for n in ledger if n.startswith("data."))
    # The repository as devinfra-backup names it (client.json)
    repo = "ssh://borg-client1@backup1:22/./repo"
    overwrite = raw_borg(client1, "create", f"{repo}::{victim}", "/etc/hostname")
    assert overwrite.rc != 0 and "already exists" in overwrite.stderr, overwrite.stderr
    # borg 1.x in append-only mode: the client's delete only adds a
    # transaction; the archive vanishes from listings but its data stays.
    assert raw_borg(client1, "delete", f"{repo}::{victim}").rc == 0
    assert victim not in archives(client1, "data")
    size_before = backup1.check_output(f"du -sb {ROOT}/client1/repo/data | cut -f1")
    maintain = backup1.run("backup-server maintain")
    assert maintain.rc == 1 and victim in maintain.stderr and "rollback" in maintain.stderr, maintain.stderr
    metrics = backup1.file(SERVER_TEXTFILE).content_string
    assert 'devinfra_backup_server_tampered{client="client1"} 1' in metrics
    # nothing was pruned or compacted away
    assert backup1.check_output(f"du -sb {ROOT}/client1/repo/data | cut -f1") == size_before
    rollback = backup1.run("backup-server rollback --client client1")
    assert rollback.rc == 0, rollback.stderr
    assert server_archives(backup1, "client1") == ledger
    # The client, told by the operator, forgets its newer records and reads the archive again.
    stale = client1.run("devinfra-backup list")
    assert stale.rc == 1 and "devinfra-backup reset" in stale.stderr, stale.stderr
    client1.check_output("devinfra-backup reset --server backup1")
    client1.run("rm -rf /tmp/restore-victim")
    client1.check_output(f"devinfra-backup extract --source data --archive {victim}"
                         " --target /tmp/restore-victim")
    restored = client1.file("/tmp/restore-victim/srv/data/pad.txt").content_string
    assert "the text of a pad on client1" in restored
    assert backup1.run("backup-server maintain").rc == 0
    assert backup1.run("backup-server check").rc == 0


def test_a_repository_over_quota_fails_clearly_and_keeps_its_archives(client2, backup1):
    before = server_archives(backup1, "client2")
    source = json.dumps({"name": "big", "paths": ["/srv/big"]})
    client2.check_output("mkdir -p /srv/big && head -c 16000000 /dev/urandom > /srv/big/blob && "
                         f"printf '%s' {shlex.quote(source)} > /etc/devinfra/backup.d/big.json")
    try:
        result = client2.run("devinfra-backup run --source big")
        assert result.rc == 1 and "quota" in result.stderr.lower(), result.stderr
        assert 'devinfra_backup_last_run_success{server="backup1",source="big"} 0' in \
            client2.file(CLIENT_TEXTFILE).content_string
    finally:
        client2.run("rm -rf /srv/big /etc/devinfra/backup.d/big.json")
    assert server_archives(backup1, "client2") == before
    assert client2.run("devinfra-backup run --source data").rc == 0


def test_restoring_an_archive_that_does_not_exist_fails_clearly(client1):
    result = client1.run("devinfra-backup extract --source data --archive data.2001-01-01T00:00:00Z "
                         "--target /tmp/restore-missing")
    assert result.rc == 1 and "no archive data.2001-01-01T00:00:00Z" in result.stderr, result.stderr
    assert not client1.file("/tmp/restore-missing").exists
    unknown = client1.run("devinfra-backup run --source nosuch")
    assert unknown.rc == 2 and "no backup source nosuch" in unknown.stderr, unknown.stderr


def test_a_role_backs_up_before_it_upgrades_data(client2):
    """before-upgrade.yaml (the zuul and gerrit roles' hook): a fresh archive, or a loud warning."""
    before = archives(client2, "data")
    run = run_playbook(scenario_directory() / "before-upgrade.yaml")
    assert run.returncode == 0, run.output()
    assert len(archives(client2, "data")) == len(before) + 1
    # the server is no backup client: it says so and goes on
    assert "WARNING: backup1 is no backup client" in run.stdout, run.output()


def test_check_mode_on_converged_hosts_reports_no_change(check_mode_is_clean):
    check_mode_is_clean()


def _server_state(backup1):
    return backup1.check_output(f"sha256sum /etc/backup-server/server.json {ROOT}/*/.ssh/authorized_keys")


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"backup_client_ssh_key": ""}, "backup_client_ssh_key is missing"),
        ({"backup_client_passphrase": ""}, "backup_client_passphrase is missing or empty"),
        ({"backup_server_quota": "lots"}, "backup_server_quota lots is not a size"),
        ({"backup_server_keep": {"daily": 0}}, "backup_server_keep keeps nothing"),
        ({"backup_client_quota": "5M"}, "backup_client_quota 5M is below borg's minimum, 10M"),
    ],
    ids=["client-without-key", "client-without-passphrase", "quota-not-a-size", "keep-nothing",
         "quota-too-small"],
)
def test_bad_input_fails_naming_it_and_changes_nothing(bad_vars_change_nothing, backup1, bad, message):
    bad_vars_change_nothing(bad, message, lambda: _server_state(backup1))
