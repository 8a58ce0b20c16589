"""The maintenance playbooks rolling-reboot.yaml and package-updates.yaml on base1 and base2.

The hosts are systemd containers: a reboot ends the container (systemd's exit)
and Docker boots it again (devinfra/hosts.py gives every host a restart policy). The
kernel does not restart, so /proc/sys/kernel/random/boot_id stays the same;
what shows a reboot is a new PID 1, i.e. a new start time of PID 1 (field 22
of /proc/1/stat, in clock ticks since the machine booted).
"""

import hashlib
import re
from pathlib import Path

import pytest
from devinfra_molecule import run_playbook, scenario_hosts

PLAYBOOKS = Path(__file__).resolve().parents[3] / "playbooks" / "maintenance"
CANARY = "devinfra-canary"
CANARY_REPO = "/srv/devinfra-canary-repo"
CANARY_LIST = "/etc/apt/sources.list.d/canary.list"


def host(name):
    return scenario_hosts()[name]


def pid1_start(name):
    return host(name).check_output("cut -d' ' -f22 /proc/1/stat").strip()


def playbook(name, *args, tmp_path=None, disabled=()):
    """Run a maintenance playbook against the scenario's hosts (some in group disabled)."""
    inventories = []
    if disabled:
        extra = tmp_path / "disabled.yaml"
        extra.write_text("all:\n  children:\n    disabled:\n      hosts:\n"
                         + "".join(f"        {h}:\n" for h in disabled))
        inventories.append(extra)
    return run_playbook(PLAYBOOKS / name, *args, inventories=inventories)


def output(run):
    return run.stdout + run.stderr


@pytest.fixture(scope="module", autouse=True)
def restore_listeners():
    """Reboots end base1's transient test listeners (prepare.yaml); start them again afterwards."""
    yield
    for port in (8080, 8081):
        host("base1").run(f"systemd-run --unit=listen-{port} /usr/bin/python3 -m http.server {port}")


def test_requires_the_hosts_to_reboot():
    before = {h: pid1_start(h) for h in ("base1", "base2")}
    run = playbook("rolling-reboot.yaml")
    assert run.returncode != 0
    assert "devinfra_reboot_hosts is required" in output(run), output(run)[-3000:]
    assert {h: pid1_start(h) for h in ("base1", "base2")} == before


def test_reboots_the_hosts_and_skips_disabled_ones(tmp_path):
    before = {h: pid1_start(h) for h in ("base1", "base2")}
    boot_id = host("base1").check_output("cat /proc/sys/kernel/random/boot_id")
    run = playbook("rolling-reboot.yaml", "-e", "devinfra_reboot_hosts=all",
                   "-e", '{"devinfra_health_ports": [22], "devinfra_health_units": ["ssh", "nftables"]}',
                   tmp_path=tmp_path, disabled=["base2"])
    assert run.returncode == 0, output(run)[-4000:]
    assert "base1 rebooted in" in run.stdout
    assert pid1_start("base1") != before["base1"], "base1's PID 1 is the same: no reboot"
    assert pid1_start("base2") == before["base2"], "base2 is in group disabled but was rebooted"
    # The container's kernel did not restart: boot_id alone would not have shown the reboot.
    assert host("base1").check_output("cat /proc/sys/kernel/random/boot_id") == boot_id
    assert host("base1").check_output("systemctl is-system-running") == "running"
    # The rebooted host serves again: the admin logs in from the other host.
    login = host("base2").run(
        "ssh -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o ConnectTimeout=5"
        " -o BatchMode=yes -i /root/id_alice alice@base1 true")
    assert login.rc == 0, login.stderr


def test_an_unhealthy_host_stops_the_play_before_the_next_host():
    # 8080 is the transient test listener of prepare.yaml: it does not come
    # back after a reboot, like a service someone forgot to enable.
    before = {h: pid1_start(h) for h in ("base1", "base2")}
    run = playbook("rolling-reboot.yaml", "-e", "devinfra_reboot_hosts=base1:base2",
                   "-e", '{"devinfra_health_ports": [22, 8080], "devinfra_health_timeout": 5}')
    assert run.returncode != 0, output(run)[-3000:]
    assert re.search(r"base1 is unhealthy: nothing answers on 127\.0\.0\.1 port\(s\) 8080", output(run)), \
        output(run)[-4000:]
    assert pid1_start("base1") != before["base1"]
    assert pid1_start("base2") == before["base2"], "the play went on to base2 after base1 failed"


def canary_version(name="base1"):
    return host(name).check_output(f"dpkg-query -W -f '${{Version}}' {CANARY}")


# Builds devinfra-canary 1.0 (installed) and 2.0 (in a local apt repository,
# its postinst asks for a reboot like a kernel or libc update does).
CANARY_SETUP = r"""set -e
rm -rf /tmp/canary && mkdir -p /tmp/canary {repo}
for v in 1.0 2.0; do
  d=/tmp/canary/$v; mkdir -p $d/DEBIAN
  printf 'Package: {pkg}\nVersion: %s\nArchitecture: all\n' $v > $d/DEBIAN/control
  printf 'Maintainer: t <t@example.test>\nDescription: test\n' >> $d/DEBIAN/control
  dpkg-deb -b $d /tmp/canary/{pkg}_$v.deb >/dev/null
done
printf '#!/bin/sh\ntouch /var/run/reboot-required\necho {pkg} >> /var/run/reboot-required.pkgs\n' \
  > /tmp/canary/2.0/DEBIAN/postinst
chmod 755 /tmp/canary/2.0/DEBIAN/postinst
dpkg-deb -b /tmp/canary/2.0 {repo}/{pkg}_2.0_all.deb >/dev/null
dpkg -i /tmp/canary/{pkg}_1.0.deb >/dev/null
rm -f /var/run/reboot-required /var/run/reboot-required.pkgs
"""


def write_canary_index(base1):
    deb = f"{CANARY_REPO}/{CANARY}_2.0_all.deb"
    data = base1.file(deb).content
    control = base1.check_output(f"dpkg-deb -f {deb}")
    packages = (f"{control}\nFilename: ./{CANARY}_2.0_all.deb\nSize: {len(data)}\n"
                f"SHA256: {hashlib.sha256(data).hexdigest()}\n\n")
    release = (f"Origin: devinfra-test\nLabel: devinfra-test\nSuite: canary\nCodename: canary\n"
               f"Architectures: all amd64\nSHA256:\n {hashlib.sha256(packages.encode()).hexdigest()}"
               f" {len(packages.encode())} Packages\n")
    for name, text in (("Packages", packages), ("Release", release)):
        base1.check_output(f"printf '%s' {_quote(text)} > {CANARY_REPO}/{name}")
    base1.check_output(f"echo 'deb [trusted=yes] file:{CANARY_REPO} ./' > {CANARY_LIST}")


def _quote(text):
    return "'" + text.replace("'", "'\\''") + "'"


@pytest.fixture(scope="module")
def canary():
    base1 = host("base1")
    base1.check_output("sh -c %s", CANARY_SETUP.format(repo=CANARY_REPO, pkg=CANARY))
    write_canary_index(base1)
    assert canary_version() == "1.0"
    yield base1
    base1.run(f"rm -f {CANARY_LIST}; dpkg -P {CANARY}; rm -rf {CANARY_REPO} /tmp/canary")


def test_package_updates_need_the_hosts():
    run = playbook("package-updates.yaml")
    assert run.returncode != 0
    assert "devinfra_updates_hosts is required" in output(run)


def test_check_mode_reports_the_upgrade_without_making_it(canary):
    before = pid1_start("base1")
    run = playbook("package-updates.yaml", "--check", "-e", "devinfra_updates_hosts=base1")
    assert run.returncode == 0, output(run)[-4000:]
    assert "to upgrade (check mode)" in run.stdout, run.stdout[-4000:]
    assert f"{CANARY} 1.0 -> 2.0" in run.stdout, run.stdout[-4000:]
    assert canary_version() == "1.0"
    assert pid1_start("base1") == before


def test_upgrades_and_reports_the_packages_and_the_reboot_required(canary, tmp_path):
    before = {h: pid1_start(h) for h in ("base1", "base2")}
    run = playbook("package-updates.yaml", "-e", "devinfra_updates_hosts=all",
                   tmp_path=tmp_path, disabled=["base2"])
    assert run.returncode == 0, output(run)[-4000:]
    assert canary_version() == "2.0"
    assert re.search(r"base1: \d+ package\(s\) upgraded", run.stdout), run.stdout[-4000:]
    assert f"{CANARY} 1.0 -> 2.0" in run.stdout
    assert re.search(rf"base1: reboot required: yes \([^)]*\b{CANARY}\b", run.stdout), run.stdout[-4000:]
    assert "base2" not in re.sub(r"(?s)PLAY RECAP.*", "", run.stdout), "base2 is disabled but was updated"
    # devinfra_updates_reboot defaults to false: nobody rebooted.
    assert {h: pid1_start(h) for h in ("base1", "base2")} == before
    assert host("base1").file("/var/run/reboot-required").exists


def test_reboots_the_host_that_requires_it_and_checks_its_health(canary):
    before = pid1_start("base1")
    assert host("base1").file("/var/run/reboot-required").exists, "the previous test set this up"
    run = playbook("package-updates.yaml", "-e", "devinfra_updates_hosts=base1",
                   "-e", '{"devinfra_updates_reboot": true, "devinfra_health_ports": [22]}')
    assert run.returncode == 0, output(run)[-4000:]
    assert "base1: 0 package(s) upgraded" in run.stdout, run.stdout[-4000:]
    assert "base1 rebooted in" in run.stdout
    assert "Wait for the required ports to answer" in run.stdout
    assert pid1_start("base1") != before
    assert not host("base1").file("/var/run/reboot-required").exists
    assert canary_version() == "2.0"
