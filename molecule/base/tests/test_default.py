"""Behaviour of the base role, seen from the hosts and from another host.

base1 and base2 both carry the role; base2 acts as the client.
"""

import re

import pytest
from devinfra_molecule import host_fixtures

SSH = "ssh -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o ConnectTimeout=5"


globals().update(host_fixtures("base1", "base2"))


def test_admin_logs_in_with_key_and_gets_root_via_sudo(base2):
    cmd = base2.run(f"{SSH} -o BatchMode=yes -i /root/id_alice alice@base1 sudo -n id -u")
    assert cmd.rc == 0, cmd.stderr
    assert cmd.stdout.strip() == "0"


def test_password_login_is_refused_even_with_the_right_password(base1, base2):
    # Give alice a real password, so a refusal can only come from sshd.
    base1.run_expect([0], "echo 'alice:Correct-Horse-42' | chpasswd")
    cmd = base2.run(
        f"sshpass -p Correct-Horse-42 {SSH} -o PubkeyAuthentication=no "
        "-o PreferredAuthentications=password,keyboard-interactive alice@base1 true"
    )
    assert cmd.rc != 0
    assert "Permission denied (publickey)" in cmd.stderr


def test_root_login_is_refused(base2):
    cmd = base2.run(f"{SSH} -o BatchMode=yes -i /root/id_alice root@base1 true")
    assert cmd.rc != 0
    assert "Permission denied" in cmd.stderr


def test_sshd_effective_config_is_hardened(base1):
    config = base1.check_output("sshd -T")
    assert "passwordauthentication no" in config
    assert "kbdinteractiveauthentication no" in config
    assert "permitrootlogin no" in config
    assert "authenticationmethods publickey" in config


def test_former_user_is_gone(base1):
    assert not base1.user("mallory").exists
    assert not base1.file("/home/mallory").exists


def fetch(host, url):
    """curl from host: its exit status (7: refused) and the HTTP status."""
    return host.run(f"curl -sS -o /dev/null -w '%{{http_code}}' --max-time 5 {url}")


def test_opened_port_is_reachable_from_the_other_host(base2):
    cmd = fetch(base2, "http://base1:8080/")
    assert cmd.rc == 0, cmd.stderr
    assert cmd.stdout == "200"


def test_port_not_opened_is_refused_although_something_listens(base1, base2):
    # The listener on 8081 answers locally: only the firewall stands between.
    assert fetch(base1, "http://127.0.0.1:8081/").stdout == "200"
    remote = fetch(base2, "http://base1:8081/")
    # 7 is curl's "failed to connect": the TCP reset of the reject rule
    # (a silently dropped packet would time out instead, exit 28).
    assert remote.rc == 7, remote.stderr


def test_port_for_a_group_is_reachable_from_a_member(base2):
    # 8082 accepts the hosts of the group clients: base2 (molecule.yml).
    cmd = fetch(base2, "http://base1:8082/")
    assert cmd.rc == 0, cmd.stderr
    assert cmd.stdout == "200"


def test_port_for_a_group_is_refused_to_a_non_member(base1, base2):
    # 8083 accepts the hosts of the group servers, base1 alone: the rule is
    # there, with base1's address, and base2 is refused all the same.
    rules = base1.check_output("nft list chain inet devinfra input")
    assert re.search(r"ip saddr \S+ tcp dport 8083 accept", rules), rules
    assert fetch(base1, "http://127.0.0.1:8083/").stdout == "200"
    remote = fetch(base2, "http://base1:8083/")
    assert remote.rc == 7, remote.stderr


def test_firewall_keeps_dockers_own_rules(base1):
    # Name resolution between containers uses Docker's NAT table; our
    # ruleset must not have flushed it (the tests above resolve names).
    tables = base1.check_output("nft list tables")
    assert "table inet devinfra" in tables
    assert "table ip nat" in tables


def test_time_sync_daemon_runs(base1):
    chrony = base1.service("chrony")
    assert chrony.is_running
    assert chrony.is_enabled
    assert "pool 2.debian.pool.ntp.org iburst" in base1.file("/etc/chrony/chrony.conf").content_string
    # chronyc answers: the daemon is alive and configured with the pool.
    assert base1.run("chronyc -n sources").rc == 0


def test_unattended_security_upgrades_are_configured(base1):
    assert base1.service("apt-daily-upgrade.timer").is_enabled
    dry = base1.run("unattended-upgrade --dry-run --debug 2>&1")
    assert dry.rc == 0, dry.stdout
    assert re.search(r"Allowed origins are:.*Debian-Security", dry.stdout)


def test_apt_sources_include_updates_and_security(base1):
    sources = base1.file("/etc/apt/sources.list.d/debian.sources").content_string
    assert "trixie trixie-updates" in sources
    assert "trixie-security" in sources
    assert base1.run("apt-get update -q").rc == 0


def test_pip_and_npm_use_the_configured_indexes(base1):
    pip = base1.check_output(
        "python3 -c \"import configparser; c = configparser.ConfigParser(); c.read('/etc/pip.conf');"
        " print(c['global']['index-url'])\"")
    assert pip == "https://mirror.example.test/pypi/simple/"
    assert "registry=https://mirror.example.test/npm/" in base1.file("/etc/npmrc").content_string.splitlines()


def test_hostname_and_hosts_file(base1):
    assert base1.check_output("hostname") == "base1"
    assert re.search(r"^\S+ base1$", base1.file("/etc/hosts").content_string, re.M)


def test_journald_retention(base1):
    effective = base1.check_output("systemd-analyze cat-config systemd/journald.conf")
    assert "SystemMaxUse=1G" in effective
    assert "MaxRetentionSec=1month" in effective


def test_check_mode_on_converged_hosts_reports_no_change(check_mode_is_clean):
    check_mode_is_clean()


@pytest.mark.parametrize(
    ("extra_vars", "message"),
    [
        ('{"base_sshd_port": "twenty-two"}', "base_sshd_port"),
        ('{"base_admin_users": [{"name": "bob", "ssh_keys": []}]}',
         "base_admin_users[0] (name: bob) has no SSH key"),
        ('{"base_firewall_allow_bad": [{"port": 70000}]}', "base_firewall_allow_bad[0]"),
        ('{"base_npm_registry": "mirror01/npm/"}', "base_npm_registry is mirror01/npm/"),
        ('{"base_firewall_allow_bad": [{"port": 8082, "source_groups": ["clinets"]}]}',
         "base_firewall_allow_bad[0]: source_groups: no group 'clinets' in the inventory"),
    ],
    ids=["wrong-type", "user-without-key", "bad-firewall-port", "index-not-a-url", "unknown-source-group"],
)
def test_bad_variables_fail_before_any_host_changes(bad_vars_change_nothing, base1, extra_vars, message):
    bad_vars_change_nothing(
        extra_vars, message, lambda: base1.check_output("sha256sum /etc/ssh/sshd_config /etc/nftables.conf"))
