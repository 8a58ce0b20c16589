"""The openstack_fleet inventory plugin, run by Ansible itself (ansible-inventory,
ansible) with the repository's ansible.cfg, against simulated OpenStack clouds
(tests/fake_openstack: a simulation on 127.0.0.1, not OpenStack)."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import openstack
import pytest
import yaml

from tests.fake_openstack import FakeCloud, clouds_yaml

ROOT = Path(__file__).resolve().parents[2]
ENV = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
           PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
TEMPLATE = "{{ lookup('pipe','id') }}"


@pytest.fixture
def start():
    """start(name, **FakeCloud options): a running simulated cloud, stopped after the test."""
    started = []

    def start_cloud(name, **options):
        cloud = FakeCloud(name, **options)
        cloud.start()
        started.append(cloud)
        return cloud
    yield start_cloud
    for cloud in started:
        cloud.stop()


def write_source(tmp_path, fakes, **options):
    """Write clouds.yaml (for a list of FakeClouds, or as given) and an inventory
    source with ``options``; return the source's path."""
    config = fakes if isinstance(fakes, dict) else clouds_yaml(*fakes)
    (tmp_path / "clouds.yaml").write_text(yaml.safe_dump(config))
    source = tmp_path / "fleet.openstack_fleet.yaml"
    source.write_text(yaml.safe_dump({"plugin": "openstack_fleet", **options}))
    return source


def run(tmp_path, *argv, **env_vars):
    env = dict(ENV, OS_CLIENT_CONFIG_FILE=str(tmp_path / "clouds.yaml"), **env_vars)
    return subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, check=False,
                          timeout=120)


def plain(value):
    """ansible-inventory prints an unsafe string as {"__ansible_unsafe": "..."}: unwrap them."""
    if isinstance(value, dict):
        if set(value) == {"__ansible_unsafe"}:
            return value["__ansible_unsafe"]
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def inventory_list(tmp_path, source):
    result = run(tmp_path, "ansible-inventory", "-i", str(source), "--list")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def hosts_of(data, group):
    return set(data.get(group, {}).get("hosts", []))


def messages(result):
    """stderr with its line wrapping undone."""
    return " ".join(result.stderr.split())


def test_clouds_regions_pages_groups_and_host_vars(tmp_path, start):
    alpha = start("alpha", regions=("RegionOne", "RegionTwo"), servers=3)
    beta = start("beta", servers=12, page_size=5)  # 3 pages: 5, 5, 2
    source = write_source(tmp_path, [alpha, beta], metadata_group_key="group",
                          keyed_groups=[{"key": "openstack.metadata.group", "prefix": "role"}],
                          compose={"ram_mb": "openstack.flavor.ram"},
                          groups={"big": "openstack.flavor.vcpus >= 4"})
    data = inventory_list(tmp_path, source)
    hostvars = {name: plain(v) for name, v in data["_meta"]["hostvars"].items()}

    assert len(hostvars) == 3 + 3 + 12
    assert beta.count("/servers/detail") == 3
    assert hosts_of(data, "cloud_alpha_RegionTwo") == {f"alpha-regiontwo-0000{n}" for n in range(3)}
    assert len(hosts_of(data, "cloud_alpha")) == 6
    assert len(hosts_of(data, "region_RegionOne")) == 3 + 12
    assert "beta-regionone-00011" in hosts_of(data, "cloud_beta")
    assert hosts_of(data, "az_az1") >= {"beta-regionone-00000", "beta-regionone-00002"}
    assert "beta-regionone-00002" in hosts_of(data, "flavor_m1_large")
    assert hosts_of(data, "web") == hosts_of(data, "role_web")
    assert "beta-regionone-00003" in hosts_of(data, "web")
    assert hosts_of(data, "big") == hosts_of(data, "flavor_m1_large")

    host = hostvars["beta-regionone-00001"]
    server = host["openstack"]
    assert host["ansible_host"] == next(a["addr"] for a in server["addresses"]["private"]
                                        if a["OS-EXT-IPS:type"] == "floating")
    assert hostvars["beta-regionone-00000"]["ansible_host"].startswith("10.")  # no floating IP: fixed IPv4
    assert server["cloud"] == {"name": "beta", "region": "RegionOne"}
    assert server["flavor"]["name"] == "m1.medium"
    assert host["ram_mb"] == 4096
    assert server["status"] == "ACTIVE"
    assert server["availability_zone"] == "az2"
    assert server["project_id"] == beta.project_id
    assert server["key_name"] == "admin"
    assert {"id", "created_at", "image", "metadata"} <= set(server)


def test_remote_data_is_unsafe_and_never_templated(tmp_path, start):
    alpha = start("alpha")
    alpha.add_servers(1, prefix=TEMPLATE, metadata={"evil": TEMPLATE})
    source = write_source(tmp_path, [alpha], compose={"evil_copy": "openstack.metadata.evil"})
    hostvars = inventory_list(tmp_path, source)["_meta"]["hostvars"]
    evil = hostvars[f"{TEMPLATE}00000"]
    assert evil["openstack"]["metadata"]["evil"] == {"__ansible_unsafe": TEMPLATE}

    result = run(tmp_path, "ansible", "-i", str(source), "all", "-m", "ansible.builtin.debug",
                 "-a", "msg='{{ inventory_hostname }} {{ openstack.metadata.evil }} {{ evil_copy }}'",
                 ANSIBLE_CALLBACK_RESULT_FORMAT="json")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f'"msg": "{TEMPLATE}00000 {TEMPLATE} {TEMPLATE}"' in result.stdout
    assert "uid=" not in result.stdout


def test_failing_cloud_is_skipped_with_a_warning_and_not_cached(tmp_path, start):
    alpha, beta = start("alpha", servers=2), start("beta", servers=2)
    beta.fail("/servers/detail", 500, times=1)
    source = write_source(tmp_path, [alpha, beta], fail_on_errors=False, cache=True,
                          cache_plugin="jsonfile", cache_connection=str(tmp_path / "cache"))
    result = run(tmp_path, "ansible-inventory", "-i", str(source), "--list")
    assert result.returncode == 0, result.stderr
    assert set(json.loads(result.stdout)["_meta"]["hostvars"]) == {"alpha-regionone-00000",
                                                                   "alpha-regionone-00001"}
    assert "skipped cloud beta region RegionOne" in messages(result)
    assert "Injected fault: HTTP 500" in messages(result)

    # Nothing was cached: the next run asks again, and gets beta's servers.
    assert len(inventory_list(tmp_path, source)["_meta"]["hostvars"]) == 4
    assert beta.count("/servers/detail") == 2


def test_failing_cloud_fails_the_inventory_by_default(tmp_path, start):
    alpha, beta = start("alpha", servers=2), start("beta", servers=2)
    beta.fail("/servers/detail", 503, times=None)
    result = run(tmp_path, "ansible-inventory", "-i", str(write_source(tmp_path, [alpha, beta])), "--list")
    assert result.returncode != 0
    assert "cannot list servers of cloud beta region RegionOne" in messages(result)
    assert "503" in messages(result)


def test_hanging_cloud_is_bounded_by_cloud_timeout(tmp_path, start):
    alpha, beta = start("alpha", servers=2), start("beta", servers=2)
    beta.hang("/servers/detail", seconds=60, times=None)
    source = write_source(tmp_path, [alpha, beta], cloud_timeout=2, fail_on_errors=False)
    began = time.monotonic()
    result = run(tmp_path, "ansible-inventory", "-i", str(source), "--list")
    assert time.monotonic() - began < 15
    assert result.returncode == 0, result.stderr
    assert len(json.loads(result.stdout)["_meta"]["hostvars"]) == 2
    assert "skipped cloud beta region RegionOne" in messages(result)


def test_bad_credentials_are_reported_with_the_cloud(tmp_path, start):
    alpha = start("alpha", servers=2)
    config = clouds_yaml(alpha)
    config["clouds"]["alpha"]["auth"]["password"] = "wrong"
    result = run(tmp_path, "ansible-inventory", "-i", str(write_source(tmp_path, config)), "--list")
    assert result.returncode != 0
    assert "cannot list servers of cloud alpha region RegionOne" in messages(result)
    assert "requires authentication" in messages(result)
    assert alpha.count("/servers") == 0


def test_cache_warm_run_makes_no_request(tmp_path, start):
    alpha = start("alpha", regions=("RegionOne", "RegionTwo"))
    alpha.error_on_create.add("broken-00000")
    alpha.add_servers(1, prefix="broken-")
    alpha.add_servers(2, region="RegionTwo")
    options = {"cache": True, "cache_plugin": "jsonfile", "cache_connection": str(tmp_path / "cache")}
    cold = inventory_list(tmp_path, write_source(tmp_path, [alpha], **options))
    cold_requests = len(alpha.requests)
    assert cold_requests > 0
    assert plain(cold["_meta"]["hostvars"]["broken-00000"]["openstack"])["fault"]["code"] == 500

    warm = inventory_list(tmp_path, write_source(tmp_path, [alpha], **options))
    assert len(alpha.requests) == cold_requests
    assert warm == cold

    # Other options choosing the servers: the cache does not answer.
    active = inventory_list(tmp_path, write_source(tmp_path, [alpha], only_active=True, **options))
    assert set(active["_meta"]["hostvars"]) == {"alpha-regiontwo-00000", "alpha-regiontwo-00001"}
    assert all("status=ACTIVE" in r.query for r in alpha.requests[cold_requests:]
               if r.path.endswith("/servers/detail"))


def test_duplicate_names_fail_or_get_the_server_id(tmp_path, start):
    alpha, beta = start("alpha"), start("beta")
    ids = [cloud.add_servers(1, prefix="web-")[0]["id"] for cloud in (alpha, beta)]
    result = run(tmp_path, "ansible-inventory", "-i", str(write_source(tmp_path, [alpha, beta])), "--list")
    assert result.returncode != 0
    assert f"web-00000 (alpha/RegionOne id {ids[0]}, beta/RegionOne id {ids[1]})" in messages(result)

    data = inventory_list(tmp_path, write_source(tmp_path, [alpha, beta], duplicate_names="suffix"))
    assert set(data["_meta"]["hostvars"]) == {f"web-00000_{ids[0]}", f"web-00000_{ids[1]}"}


def test_clouds_option_selects_clouds_and_regions(tmp_path, start):
    alpha = start("alpha", regions=("RegionOne", "RegionTwo"), servers=1)
    beta, gamma = start("beta", servers=1), start("gamma", servers=1)
    source = write_source(tmp_path, [alpha, beta, gamma],
                          clouds=["beta", {"name": "alpha", "regions": ["RegionTwo"]}])
    assert set(inventory_list(tmp_path, source)["_meta"]["hostvars"]) == {"beta-regionone-00000",
                                                                          "alpha-regiontwo-00000"}
    assert gamma.requests == []

    # clouds_yaml_path: that file only, whatever OS_CLIENT_CONFIG_FILE says.
    (tmp_path / "gamma.yaml").write_text(yaml.safe_dump(clouds_yaml(gamma)))
    source.write_text(yaml.safe_dump({"plugin": "openstack_fleet",
                                      "clouds_yaml_path": str(tmp_path / "gamma.yaml")}))
    assert set(inventory_list(tmp_path, source)["_meta"]["hostvars"]) == {"gamma-regionone-00000"}


def test_documentation_renders():
    result = subprocess.run(["ansible-doc", "-t", "inventory", "openstack_fleet"], env=ENV,
                            capture_output=True, text=True, check=False, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "cloud_timeout" in result.stdout


def test_fake_openstack_serves_the_launch_path(tmp_path, start):
    # devinfra's launch-node relies on these endpoints of the simulation.
    alpha = start("alpha", build_polls=1)
    alpha.error_on_create.add("bad01")
    (tmp_path / "clouds.yaml").write_text(yaml.safe_dump(clouds_yaml(alpha)))
    config = openstack.config.OpenStackConfig(config_files=[str(tmp_path / "clouds.yaml")])
    conn = openstack.connection.Connection(config=config.get_one("alpha"))
    flavor = conn.compute.find_flavor("m1.small", ignore_missing=False)
    image = conn.image.find_image("debian-12", ignore_missing=False)
    network = conn.network.find_network("public", ignore_missing=False)
    server = conn.compute.create_server(name="web01", flavor_id=flavor.id, image_id=image.id,
                                        networks=[{"uuid": network.id}], key_name="admin")
    server = conn.compute.wait_for_server(server, interval=0.01, wait=5)
    assert [a["version"] for a in server.addresses["public"]] == [4, 6]

    volume = conn.block_storage.create_volume(size=10, name="data")
    conn.block_storage.wait_for_status(volume, "available", interval=0.01, wait=5)
    conn.compute.create_volume_attachment(server, volume_id=volume.id)
    assert conn.block_storage.get_volume(volume.id).status == "in-use"
    conn.compute.delete_volume_attachment(server, volume.id)
    conn.block_storage.wait_for_status(volume, "available", interval=0.01, wait=5)
    conn.block_storage.delete_volume(volume)
    conn.block_storage.wait_for_delete(volume, interval=0.01, wait=5)
    conn.compute.delete_server(server)
    conn.compute.wait_for_delete(server, interval=0.01, wait=5)

    bad = conn.compute.create_server(name="bad01", flavor_id=flavor.id, image_id=image.id, networks="auto")
    with pytest.raises(openstack.exceptions.ResourceFailure):
        conn.compute.wait_for_server(bad, interval=0.01, wait=5)
    conn.close()
