"""devinfra launch-node against the SIMULATED OpenStack API (tests/fake_openstack).

The fake answers what openstacksdk asks for; it is not an OpenStack. These
tests prove our control flow (reuse, waits, clean-up, inventory edit), not
the behaviour of a real cloud.
"""

import shutil
from pathlib import Path

import pytest
import yaml

from devinfra import cli, launch
from tests.fake_openstack.server import FakeCloud

ROOT = Path(__file__).resolve().parents[2]
NAME = "mirror01.sjc.example.org"


@pytest.fixture
def cloud(tmp_path, monkeypatch):
    with FakeCloud("sim", build_polls=2) as fake:
        clouds = tmp_path / "clouds.yaml"
        clouds.write_text(yaml.safe_dump({"clouds": {"sim": fake.clouds_yaml_entry()}}))
        monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(clouds))
        yield fake


@pytest.fixture
def hosts_file(tmp_path):
    path = tmp_path / "hosts.yaml"
    shutil.copy(ROOT / "inventory/base/hosts.yaml", path)
    return path


def request(hosts_file, **overrides):
    values = dict(name=NAME, cloud="sim", flavor="m1.small", image="debian-12", network="public",
                  key="admin", timeout=20, poll_interval=0.05, inventory=hosts_file)
    values.update(overrides)
    return launch.LaunchRequest(**values)


def servers(cloud):
    return [s for region in cloud.regions.values() for s in region.servers.values()]


def test_launch_creates_waits_and_records_the_host(cloud, hosts_file):
    result = launch.launch(request(hosts_file), log=lambda m: None)
    assert result.created and result.inventory_change == "added"
    assert [s["name"] for s in servers(cloud)] == [NAME]
    assert servers(cloud)[0]["status"] == "ACTIVE"
    host = yaml.safe_load(hosts_file.read_text())["all"]["hosts"][NAME]
    assert host["ansible_host"] == result.ipv4
    records = launch.dns_records(NAME, result.ipv4, result.ipv6)
    assert records[0] == f"{NAME}. 3600 IN A {result.ipv4}"
    assert any(" IN AAAA " in r for r in records) == bool(result.ipv6)


def test_rerun_reuses_the_server_and_changes_nothing(cloud, hosts_file):
    launch.launch(request(hosts_file), log=lambda m: None)
    text = hosts_file.read_text()
    again = launch.launch(request(hosts_file), log=lambda m: None)
    assert not again.created and again.inventory_change == "unchanged"
    assert cloud.count("/servers", method="POST") == 1
    assert len(servers(cloud)) == 1
    assert hosts_file.read_text() == text


def test_volume_is_created_and_attached(cloud, hosts_file):
    result = launch.launch(request(hosts_file, volume_size=20), log=lambda m: None)
    volumes = [v for region in cloud.regions.values() for v in region.volumes.values()]
    assert [v["id"] for v in volumes] == [result.volume_id]
    assert volumes[0]["status"] == "in-use"
    assert volumes[0]["size"] == 20


def test_server_in_error_is_deleted_and_reported(cloud, hosts_file):
    cloud.error_on_create.add(NAME)
    text = hosts_file.read_text()
    with pytest.raises(launch.LaunchError, match="waiting for the server to be ACTIVE.*deleted server"):
        launch.launch(request(hosts_file), log=lambda m: None)
    assert servers(cloud) == []
    assert hosts_file.read_text() == text


def test_timeout_deletes_the_server(tmp_path, monkeypatch, hosts_file):
    with FakeCloud("slow", build_polls=10_000) as fake:
        clouds = tmp_path / "clouds.yaml"
        clouds.write_text(yaml.safe_dump({"clouds": {"slow": fake.clouds_yaml_entry()}}))
        monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(clouds))
        with pytest.raises(launch.LaunchError, match="ACTIVE.*deleted server"):
            launch.launch(request(hosts_file, cloud="slow", timeout=0.5), log=lambda m: None)
        assert servers(fake) == []


def test_failed_attach_removes_volume_and_server(cloud, hosts_file):
    cloud.fail("os-volume_attachments", status=500, times=None, method="POST")
    with pytest.raises(launch.LaunchError, match="creating and attaching the volume.*deleted volume.*"
                                                 "deleted server"):
        launch.launch(request(hosts_file, volume_size=10), log=lambda m: None)
    assert servers(cloud) == []
    assert [v for r in cloud.regions.values() for v in r.volumes.values()] == []


@pytest.mark.parametrize(("field", "value", "message"), [
    ("flavor", "m9.huge", "flavor 'm9.huge' does not exist on cloud 'sim'"),
    ("image", "plan9", "image 'plan9' does not exist on cloud 'sim'"),
    ("network", "nowhere", "network 'nowhere' does not exist on cloud 'sim'"),
    ("key", "nobody", "key pair 'nobody' does not exist on cloud 'sim'"),
])
def test_unknown_resources_fail_before_anything_is_created(cloud, hosts_file, field, value, message):
    with pytest.raises(launch.LaunchError, match=message):
        launch.launch(request(hosts_file, **{field: value}), log=lambda m: None)
    assert cloud.count("/servers", method="POST") == 0


def test_unknown_cloud_is_a_clear_error(cloud, hosts_file):
    with pytest.raises(launch.LaunchError, match="cannot connect to cloud 'nope'"):
        launch.launch(request(hosts_file, cloud="nope"), log=lambda m: None)


def test_cli_prints_server_inventory_change_and_dns_records(cloud, hosts_file, capsys):
    rc = cli.main(["launch-node", NAME, "--cloud", "sim", "--flavor", "m1.small", "--image", "debian-12",
                   "--network", "public", "--poll-interval", "0.05", "--timeout", "20",
                   "--inventory", str(hosts_file)])
    out = capsys.readouterr().out
    assert rc == 0
    assert f"server {NAME}: " in out and "(created)" in out
    assert f"inventory {hosts_file}: host added" in out
    assert f"  {NAME}. 3600 IN A " in out
