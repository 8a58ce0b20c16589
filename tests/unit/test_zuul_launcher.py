"""The zuul_launcher filters: OpenStack providers for Zuul 14's zuul-launcher.

No cloud is reachable here, so the configuration is checked by rendering it:
the Python filters (whole structures and every error), Ansible running them
and the role's clouds.yaml template (with a vaulted password), openstacksdk
reading that clouds.yaml the way Zuul 14.3.0's launcher does against the
simulated clouds of tests/fake_openstack (a simulation, not OpenStack), and
Zuul's own parsers.

Zuul's parsers: zuul is not a dependency of this repository. With
DEVINFRA_ZUUL_PYTHON pointing at the python of a scratch venv with
``zuul==14.3.0`` (``python3 -m venv /tmp/zuulvenv && /tmp/zuulvenv/bin/pip
install zuul==14.3.0``), the test_zuul_* tests run ZUUL_CHECK there: the
connections go through zuul.conf's ConnectionRegistry; the objects through
Zuul's YAML loader, configloader's image/flavor/label/section/provider
parsers, label references, the section/provider flattening (the openstack
driver's voluptuous schemas) and the OpenstackProvider constructor, whose
endpoint reads the clouds.yaml the filter wrote (no request is sent; only
ZooKeeper is left out). Without that variable they are skipped, saying so.
Last run (Zuul 14.3.0, openstacksdk 4.22.0): all passed.
"""

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import openstack
import pytest
import yaml
from ansible.errors import AnsibleFilterError
from zuul_launcher import FilterModule, zuul_clouds_yaml, zuul_openstack, zuul_openstack_connections

from tests.fake_openstack import FakeCloud

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "roles/zuul/templates/clouds.yaml.j2"
ENV = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
           ANSIBLE_FILTER_PLUGINS=str(ROOT / "plugins/filter"),
           ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json", NO_PROXY="127.0.0.1", no_proxy="127.0.0.1",
           PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")

# Two clouds: alpha (one region, floating IPs, a keypair) and beta's RegionTwo
# (provider networks, no floating IPs, its own connection name and rate).
EXAMPLE = [
    {
        "name": "alpha",
        "cloud": "alpha",
        "region": "RegionOne",
        "launch_timeout": 900,
        "max_servers": 20,
        "max_cores": 80,
        "max_ram": 163840,
        "boot_timeout": 300,
        "key_name": "zuul",
        "networks": ["private"],
        "floating_ip": True,
        "images": [
            {"name": "debian-trixie", "image_id": "6c8a4a70-3a7e-4d8e-9a51-0e1c7b4b8f01",
             "username": "zuul", "python_path": "/usr/bin/python3", "connection_type": "ssh",
             "description": "Debian 13"},
            {"name": "ubuntu-noble", "image_id": "0b7f5d9e-2c4e-4f0a-8d7b-6a3e1c2d9f10",
             "username": "ubuntu", "python_path": "/usr/bin/python3"},
        ],
        "flavors": [
            {"name": "small", "flavor_name": "m1.small", "description": "2 vCPU, 4 GB"},
            {"name": "large", "flavor_name": "m1.large"},
        ],
        "labels": [
            {"name": "debian-trixie-small", "image": "debian-trixie", "flavor": "small", "min_ready": 2},
            {"name": "debian-trixie-large", "image": "debian-trixie", "flavor": "large",
             "boot_from_volume": True, "volume_size": 80, "boot_timeout": 600},
            {"name": "ubuntu-noble-small", "image": "ubuntu-noble", "flavor": "small"},
        ],
    },
    {
        "name": "beta-two",
        "cloud": "beta",
        "region": "RegionTwo",
        "connection": "openstack-beta",
        "rate": 5,
        "max_servers": 10,
        "networks": ["zuul-net", "storage-net"],
        "security_groups": ["zuul-nodes"],
        "floating_ip": False,
        "port_cleanup_interval": 0,
        "images": [
            {"name": "debian-trixie", "image_id": "f3e2d1c0-b9a8-4765-8432-10fedcba9876",
             "username": "zuul", "python_path": "/usr/bin/python3", "config_drive": False,
             "description": "Debian 13"},
        ],
        "flavors": [{"name": "small", "flavor_name": "2c4g", "description": "2 vCPU, 4 GB"}],
        "labels": [{"name": "debian-trixie-small", "image": "debian-trixie", "flavor": "small",
                    "min_ready": 2}],
    },
]

EXPECTED_OBJECTS = [
    {"image": {"name": "debian-trixie", "type": "cloud", "description": "Debian 13"}},
    {"image": {"name": "ubuntu-noble", "type": "cloud"}},
    {"flavor": {"name": "small", "description": "2 vCPU, 4 GB"}},
    {"flavor": {"name": "large"}},
    {"label": {"name": "debian-trixie-small", "image": "debian-trixie", "flavor": "small", "min-ready": 2}},
    {"label": {"name": "debian-trixie-large", "image": "debian-trixie", "flavor": "large"}},
    {"label": {"name": "ubuntu-noble-small", "image": "ubuntu-noble", "flavor": "small"}},
    {"section": {
        "name": "alpha",
        "connection": "openstack-alpha",
        "region": "RegionOne",
        "launch-timeout": 900,
        "resource-limits": {"instances": 20, "cores": 80, "ram": 163840},
        "label-defaults": {"boot-timeout": 300, "key-name": "zuul", "networks": ["private"],
                           "auto-floating-ip": True},
        "images": [
            {"name": "debian-trixie", "image-id": "6c8a4a70-3a7e-4d8e-9a51-0e1c7b4b8f01",
             "username": "zuul", "python-path": "/usr/bin/python3", "connection-type": "ssh"},
            {"name": "ubuntu-noble", "image-id": "0b7f5d9e-2c4e-4f0a-8d7b-6a3e1c2d9f10",
             "username": "ubuntu", "python-path": "/usr/bin/python3"},
        ],
        "flavors": [{"name": "small", "flavor-name": "m1.small"},
                    {"name": "large", "flavor-name": "m1.large"}],
        "labels": [{"name": "debian-trixie-small"},
                   {"name": "debian-trixie-large", "boot-timeout": 600, "boot-from-volume": True,
                    "volume-size": 80},
                   {"name": "ubuntu-noble-small"}],
    }},
    {"provider": {"name": "alpha", "section": "alpha"}},
    {"section": {
        "name": "beta-two",
        "connection": "openstack-beta",
        "region": "RegionTwo",
        "resource-limits": {"instances": 10},
        "port-cleanup-interval": 0,
        "label-defaults": {"networks": ["zuul-net", "storage-net"], "security-groups": ["zuul-nodes"],
                           "auto-floating-ip": False},
        "images": [{"name": "debian-trixie", "image-id": "f3e2d1c0-b9a8-4765-8432-10fedcba9876",
                    "username": "zuul", "python-path": "/usr/bin/python3", "config-drive": False}],
        "flavors": [{"name": "small", "flavor-name": "2c4g"}],
        "labels": [{"name": "debian-trixie-small"}],
    }},
    {"provider": {"name": "beta-two", "section": "beta-two"}},
]

EXPECTED_CONNECTIONS = {
    "openstack-alpha": {"driver": "openstack", "cloud": "alpha"},
    "openstack-beta": {"driver": "openstack", "cloud": "beta", "rate": 5},
}

CLOUDS = {
    "alpha": {"auth": {"auth_url": "https://alpha.example.org:5000/v3", "username": "zuul",
                       "password": "pw: '#1\"", "project_name": "ci", "user_domain_name": "Default",
                       "project_domain_name": "Default"},
              "region_name": "RegionOne", "identity_api_version": 3},
    "beta": {"auth": {"auth_url": "https://beta.example.org/identity/v3", "username": "zuul",
                      "password": "other", "project_name": "ci"},
             "regions": ["RegionOne", {"name": "RegionTwo", "values": {"interface": "internal"}}]},
}


def example():
    return copy.deepcopy(EXAMPLE)


def test_filters_are_registered():
    assert FilterModule().filters() == {
        "devinfra_zuul_openstack": zuul_openstack,
        "devinfra_zuul_openstack_connections": zuul_openstack_connections,
        "devinfra_zuul_clouds_yaml": zuul_clouds_yaml,
    }


def test_two_clouds_render_the_expected_objects_and_connections():
    assert zuul_openstack(example()) == EXPECTED_OBJECTS
    assert zuul_openstack_connections(example()) == EXPECTED_CONNECTIONS


def test_the_objects_are_plain_yaml_in_the_config_project_format():
    # A zuul.d file is a list of single-key mappings; safe_dump refuses any
    # non-plain value (an Ansible tagged string, for one).
    text = yaml.safe_dump(zuul_openstack(example()), sort_keys=False)
    assert yaml.safe_load(text) == EXPECTED_OBJECTS
    assert all(len(item) == 1 for item in EXPECTED_OBJECTS)


def test_no_providers_render_nothing():
    assert zuul_openstack([]) == [] and zuul_openstack(None) == []
    assert zuul_openstack_connections([]) == {}
    assert yaml.safe_load(zuul_clouds_yaml({}, [])) == {"clouds": {}}


def test_providers_of_one_cloud_may_share_a_connection():
    providers = example()
    providers[1].update(cloud="alpha", connection="openstack-alpha", region="RegionTwo")
    del providers[1]["rate"]
    assert zuul_openstack_connections(providers) == {"openstack-alpha": {"driver": "openstack",
                                                                         "cloud": "alpha"}}


def test_digit_strings_from_templating_are_numbers():
    providers = example()
    providers[0]["max_servers"] = "20"
    providers[0]["labels"][0]["min_ready"] = "2"
    assert zuul_openstack(providers) == EXPECTED_OBJECTS


def modify(path, value):
    """A copy of EXAMPLE with the key at ``path`` (keys/indexes) set, appended, or removed (value ...)."""
    providers = example()
    target = providers
    for key in path[:-1]:
        target = target[key]
    if value is ...:
        del target[path[-1]]
    elif isinstance(target, list) and path[-1] == len(target):
        target.append(value)
    else:
        target[path[-1]] = value
    return providers


A = "zuul_launcher_openstack[0] (alpha)"
B = "zuul_launcher_openstack[1] (beta-two)"


@pytest.mark.parametrize(("path", "value", "message"), [
    # unknown keys
    ((0, "regoin"), "RegionOne", f"{A}: unknown key(s) regoin (allowed: "),
    ((0, "images", 1, "image_name"), "noble", f"{A} images[1] (ubuntu-noble): unknown key(s) image_name "
     "(allowed: ...); Zuul 14's OpenStack driver boots cloud images by ID only"),
    ((0, "flavors", 0, "ram"), 4096, f"{A} flavors[0] (small): unknown key(s) ram"),
    ((0, "labels", 0, "min-ready"), 1, f"{A} labels[0] (debian-trixie-small): unknown key(s) min-ready"),
    # references
    ((0, "labels", 2, "image"), "ubuntu-nobel", f"{A} labels[2] (ubuntu-noble-small): image 'ubuntu-nobel' "
     "is not one of this provider's images (debian-trixie, ubuntu-noble)"),
    ((1, "labels", 0, "flavor"), "large", f"{B} labels[0] (debian-trixie-small): flavor 'large' is not one "
     "of this provider's flavors (small)"),
    ((1, "labels", 1), {"name": "ubuntu-noble-small", "image": "ubuntu-noble", "flavor": "small"},
     f"{B} labels[1] (ubuntu-noble-small): image 'ubuntu-noble' is not one of this provider's images "
     "(debian-trixie)"),
    # duplicates
    ((1, "name"), "alpha", "zuul_launcher_openstack[1] (alpha): name alpha is already used by "
     f"{A}"),
    ((0, "images", 1, "name"), "debian-trixie", f"{A} images[1] (debian-trixie): image debian-trixie "
     f"is listed twice in {A}"),
    ((0, "flavors", 1, "name"), "small", f"{A} flavors[1] (small): flavor small is listed twice"),
    ((0, "labels", 2, "name"), "debian-trixie-small", f"{A} labels[2] (debian-trixie-small): label "
     "debian-trixie-small is listed twice"),
    # missing fields
    ((1, "cloud"), ..., f"{B}: missing cloud"),
    ((0, "name"), ..., "zuul_launcher_openstack[0]: missing name"),
    ((0, "images", 0, "image_id"), ..., f"{A} images[0] (debian-trixie): missing image_id"),
    ((0, "flavors", 0, "flavor_name"), ..., f"{A} flavors[0] (small): missing flavor_name"),
    ((0, "labels", 0, "flavor"), ..., f"{A} labels[0] (debian-trixie-small): missing flavor"),
    ((1, "labels"), [], f"{B}: labels is empty"),
    # bad types and values
    ((0, "max_servers"), "ten", f"{A}: max_servers must be an integer >= 0, got 'ten'"),
    ((0, "launch_timeout"), 0, f"{A}: launch_timeout must be an integer >= 1, got 0"),
    ((0, "boot_timeout"), True, f"{A}: boot_timeout must be an integer >= 1, got True"),
    ((0, "floating_ip"), "sometimes", f"{A}: floating_ip must be true or false, got 'sometimes'"),
    ((0, "networks"), {"private": 1}, f"{A}: networks must be a list of strings, got dict"),
    ((0, "networks"), ["private", " "], f"{A}: networks must be a list of names or IDs, got ' '"),
    ((0, "rate"), 0, f"{A}: rate must be a number > 0"),
    ((0, "region"), " ", f"{A}: region must be a non-empty string, got ' '"),
    ((0, "cloud"), "my cloud", f"{A}: cloud 'my cloud' is not a valid name"),
    ((0, "connection"), "openstack]", f"{A}: connection 'openstack]' is not a valid name"),
    ((0, "images"), {"name": "debian-trixie"}, f"{A}: images must be a list, got dict"),
    ((0, "images", 0), "debian-trixie", f"{A} images[0]: expected a mapping, got str"),
    ((0, "images", 0, "image_id"), "debian-13", f"{A} images[0] (debian-trixie): image_id 'debian-13' is "
     "not a Glance image ID (a UUID)"),
    ((0, "images", 0, "connection_type"), "telnet", f"{A} images[0] (debian-trixie): connection_type "
     "'telnet' is not one of ssh, winrm"),
    ((0, "images", 0, "connection_port"), 70000, f"{A} images[0] (debian-trixie): connection_port 70000 "
     "is outside 1-65535"),
    ((0, "labels", 1, "volume_size"), ..., f"{A} labels[1] (debian-trixie-large): volume_size (GB) is "
     "required with boot_from_volume"),
    ((0, "labels", 0, "min_ready"), -1, f"{A} labels[0] (debian-trixie-small): min_ready must be an "
     "integer >= 0, got -1"),
    ((1,), "beta", "zuul_launcher_openstack[1]: expected a mapping, got str"),
    # Zuul-wide objects must agree between providers
    ((1, "labels", 0, "min_ready"), 1, f"{B} labels[0] (debian-trixie-small): min_ready 1 differs from 2 "
     f"in {A}; a label is Zuul-wide and must be the same in every provider"),
    ((1, "images", 0, "description"), "Trixie", f"{B} images[0] (debian-trixie): description 'Trixie' "
     f"differs from 'Debian 13' in {A}"),
    ((1, "labels", 0, "image"), "debian-trixie-2", f"{B} labels[0] (debian-trixie-small): image "
     "'debian-trixie-2' is not one of this provider's images"),
])
def test_bad_entries_name_the_entry_and_field(path, value, message):
    providers = modify(path, value)
    with pytest.raises(AnsibleFilterError) as error:
        zuul_openstack(providers)
    head, _, tail = message.partition("(allowed: ...)")
    assert head in str(error.value)
    assert tail in str(error.value)
    # The other filters check the providers the same way.
    with pytest.raises(AnsibleFilterError, match="zuul_launcher_openstack"):
        zuul_openstack_connections(providers)


def test_types_are_ansibles_argument_spec_types():
    """ArgumentSpecValidator types the fields, with a role argument spec's conversions."""
    providers = modify((0, "floating_ip"), "yes")
    providers[0]["networks"] = "private"
    providers[0]["region"] = 1
    [section] = [o["section"] for o in zuul_openstack(providers) if "section" in o and
                 o["section"]["name"] == "alpha"]
    assert section["label-defaults"]["auto-floating-ip"] is True
    assert section["label-defaults"]["networks"] == ["private"]
    assert section["region"] == "1"


def test_a_label_whose_image_differs_between_providers_is_refused():
    providers = example()
    providers[1]["images"].append({"name": "debian-trixie-2",
                                   "image_id": "11111111-2222-3333-4444-555555555555"})
    providers[1]["labels"][0]["image"] = "debian-trixie-2"
    with pytest.raises(AnsibleFilterError) as error:
        zuul_openstack(providers)
    assert (f"{B} labels[0] (debian-trixie-small): image 'debian-trixie-2' differs from 'debian-trixie' "
            f"in {A}; a label is Zuul-wide") in str(error.value)


def test_the_providers_variable_must_be_a_list():
    with pytest.raises(AnsibleFilterError,
                       match="zuul_launcher_openstack must be a list of providers, got dict"):
        zuul_openstack({"name": "alpha"})


def test_one_connection_cannot_reach_two_clouds():
    providers = modify((1, "connection"), "openstack-alpha")
    with pytest.raises(AnsibleFilterError) as error:
        zuul_openstack_connections(providers)
    assert (f"{B}: cloud 'beta' differs from 'alpha' in {A}, which uses the same connection "
            "openstack-alpha") in str(error.value)


def test_clouds_yaml_is_the_clouds_mapping_under_clouds():
    text = zuul_clouds_yaml(CLOUDS, EXAMPLE)
    assert yaml.safe_load(text) == {"clouds": CLOUDS}


@pytest.mark.parametrize(("clouds", "providers", "message"), [
    ({"alpha": CLOUDS["alpha"]}, EXAMPLE,
     f"{B}: cloud 'beta' is not in zuul_launcher_clouds (clouds: alpha)"),
    (None, EXAMPLE, f"{A}: cloud 'alpha' is not in zuul_launcher_clouds (clouds: none)"),
    (CLOUDS, modify((0, "region"), "RegionTwo"), f"{A}: region 'RegionTwo' is not a region of cloud alpha "
     "in zuul_launcher_clouds (RegionOne)"),
    (CLOUDS, modify((1, "region"), "RegionThree"), f"{B}: region 'RegionThree' is not a region of cloud "
     "beta in zuul_launcher_clouds (RegionOne, RegionTwo)"),
    ({"clouds": CLOUDS}, [], "zuul_launcher_clouds is the content of the clouds: key"),
    (["alpha"], [],
     "zuul_launcher_clouds must be a mapping of cloud name to its clouds.yaml entry, got list"),
    ({"alpha": "password=hunter2"}, [], "zuul_launcher_clouds.alpha: expected a mapping (the cloud's "
     "clouds.yaml entry), got str"),
])
def test_bad_clouds_are_named_without_their_secrets(clouds, providers, message):
    with pytest.raises(AnsibleFilterError) as error:
        zuul_clouds_yaml(clouds, providers)
    assert message in str(error.value)
    assert "hunter2" not in str(error.value) and "pw:" not in str(error.value)


def test_the_connections_leave_the_clouds_yaml_path_to_openstacksdk():
    # Zuul 14.3.0 gives client_config_file (or OS_CLIENT_CONFIG_FILE) to
    # openstacksdk as a string, and openstacksdk reads a string as a list of
    # one-letter paths: the cloud is then "not found". clouds.yaml goes to
    # /etc/openstack/clouds.yaml, on openstacksdk's default search path.
    for settings in zuul_openstack_connections(example()).values():
        assert set(settings) <= {"driver", "cloud", "rate"}


# -- Ansible -----------------------------------------------------------------

def ansible_playbook(tmp_path, tasks, variables, *args):
    playbook = [{"name": "Render", "hosts": "localhost", "connection": "local", "gather_facts": False,
                 "vars": {"ansible_python_interpreter": sys.executable}, "tasks": tasks}]
    (tmp_path / "play.yaml").write_text(yaml.safe_dump(playbook, sort_keys=False))
    (tmp_path / "vars.yaml").write_text(variables)
    return subprocess.run(["ansible-playbook", "-i", "localhost,", str(tmp_path / "play.yaml"),
                           "-e", f"@{tmp_path / 'vars.yaml'}", *args],
                          cwd=ROOT, env=ENV, capture_output=True, text=True, check=False, timeout=120)


def render_tasks(tmp_path):
    return [
        {"name": "Write the objects", "ansible.builtin.copy": {
            "content": "{{ zuul_launcher_openstack | devinfra_zuul_openstack | to_json }}",
            "dest": str(tmp_path / "objects.json"), "mode": "0644"}},
        {"name": "Write the connections", "ansible.builtin.copy": {
            "content": "{{ zuul_launcher_openstack | devinfra_zuul_openstack_connections | to_json }}",
            "dest": str(tmp_path / "connections.json"), "mode": "0644"}},
        {"name": "Write clouds.yaml", "ansible.builtin.template": {
            "src": str(TEMPLATE), "dest": str(tmp_path / "clouds.yaml"), "mode": "0600"}},
    ]


def vault_string(tmp_path, secret):
    """``!vault |`` YAML for ``secret``, encrypted with the password file tmp_path/vault-pass."""
    (tmp_path / "vault-pass").write_text("test vault password\n")
    run = subprocess.run(["ansible-vault", "encrypt_string", "--vault-password-file",
                          str(tmp_path / "vault-pass"), secret], env=ENV, capture_output=True, text=True,
                         check=True, timeout=60)
    return run.stdout.strip()


def test_ansible_loads_the_filters():
    run = subprocess.run(["ansible", "localhost", "-c", "local", "-m", "ansible.builtin.debug", "-a",
                          "msg={{ [] | devinfra_zuul_openstack }}"], cwd=ROOT,
                         env=dict(ENV, ANSIBLE_LOAD_CALLBACK_PLUGINS="1"),
                         capture_output=True, text=True, check=False, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert json.loads(run.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]["msg"] == []


def test_ansible_renders_the_example_and_a_vaulted_clouds_yaml(tmp_path):
    # Ansible's to_nice_yaml would write a vaulted password as its ciphertext:
    # the template must get the decrypted text into clouds.yaml.
    clouds = copy.deepcopy(CLOUDS)
    clouds["alpha"]["auth"]["password"] = "@@VAULT@@"
    secret = "s3cret: '#with\" quotes"
    variables = yaml.safe_dump({"zuul_launcher_openstack": EXAMPLE, "zuul_launcher_clouds": clouds})
    variables = variables.replace("'@@VAULT@@'", vault_string(tmp_path, secret).replace("\n", "\n        "))
    run = ansible_playbook(tmp_path, render_tasks(tmp_path), variables,
                           "--vault-password-file", str(tmp_path / "vault-pass"))
    assert run.returncode == 0, run.stdout + run.stderr
    assert json.loads((tmp_path / "objects.json").read_text()) == EXPECTED_OBJECTS
    assert json.loads((tmp_path / "connections.json").read_text()) == EXPECTED_CONNECTIONS
    text = (tmp_path / "clouds.yaml").read_text()
    assert "$ANSIBLE_VAULT" not in text and "!vault" not in text
    rendered = yaml.safe_load(text)
    assert rendered["clouds"]["alpha"]["auth"]["password"] == secret
    clouds["alpha"]["auth"]["password"] = secret
    assert rendered == {"clouds": clouds}
    assert (tmp_path / "clouds.yaml").stat().st_mode & 0o777 == 0o600


def test_ansible_fails_a_bad_entry_naming_it(tmp_path):
    variables = yaml.safe_dump({"zuul_launcher_openstack": modify((0, "labels", 0, "image"), "debian"),
                                "zuul_launcher_clouds": CLOUDS})
    run = ansible_playbook(tmp_path, render_tasks(tmp_path)[:1], variables)
    assert run.returncode != 0
    assert (f"{A} labels[0] (debian-trixie-small): image 'debian' is not one of this provider's images"
            in run.stdout + run.stderr)
    assert not (tmp_path / "objects.json").exists()


@pytest.fixture
def fake_clouds():
    alpha = FakeCloud("alpha", regions=("RegionOne",))
    beta = FakeCloud("beta", regions=("RegionOne", "RegionTwo"))
    alpha.start()
    beta.start()
    yield alpha, beta
    alpha.stop()
    beta.stop()


def test_openstacksdk_reads_the_rendered_clouds_yaml_as_zuul_does(tmp_path, fake_clouds, monkeypatch):
    """clouds.yaml from the template, providers naming what the simulated clouds have; then
    what Zuul 14.3.0's OpenstackProviderEndpoint does: OpenStackConfig(config_files=...,
    load_envvars=False, app_name='zuul').get_one(cloud, region_name), a Connection with the
    connection's rate, the flavor looked up by name or ID, the image by ID, each network."""
    alpha, beta = fake_clouds
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    monkeypatch.setenv("no_proxy", "127.0.0.1")

    def image_id(cloud, region, name):
        return next(i["id"] for i in cloud.regions[region].images if i["name"] == name)

    providers = [
        {"name": "alpha", "cloud": "alpha", "key_name": "admin", "networks": ["private"],
         "images": [{"name": "debian", "image_id": image_id(alpha, "RegionOne", "debian-12")}],
         "flavors": [{"name": "small", "flavor_name": "m1.small"}],
         "labels": [{"name": "debian-small", "image": "debian", "flavor": "small"}]},
        {"name": "beta-two", "cloud": "beta", "region": "RegionTwo", "rate": 10, "networks": ["public"],
         "images": [{"name": "debian", "image_id": image_id(beta, "RegionTwo", "debian-12")}],
         "flavors": [{"name": "small", "flavor_name": "m1.medium"}],
         "labels": [{"name": "debian-small", "image": "debian", "flavor": "small"}]},
    ]
    clouds = {cloud.name: cloud.clouds_yaml_entry() for cloud in (alpha, beta)}
    variables = yaml.safe_dump({"zuul_launcher_openstack": providers, "zuul_launcher_clouds": clouds})
    run = ansible_playbook(tmp_path, render_tasks(tmp_path), variables)
    assert run.returncode == 0, run.stdout + run.stderr
    connections = json.loads((tmp_path / "connections.json").read_text())
    sections = [o["section"] for o in json.loads((tmp_path / "objects.json").read_text()) if "section" in o]
    assert [s["name"] for s in sections] == ["alpha", "beta-two"]
    for section in sections:
        settings = connections[section["connection"]]
        config = openstack.config.OpenStackConfig(config_files=[str(tmp_path / "clouds.yaml")],
                                                  load_envvars=False, app_name="zuul")
        region = config.get_one(cloud=settings["cloud"], region_name=section.get("region"))
        client = openstack.connection.Connection(config=region, use_direct_get=False,
                                                 rate_limit=float(settings.get("rate", 2)))
        try:
            assert client.config.config["region_name"] == section.get("region", "RegionOne")
            flavors = client.list_flavors(get_extra=False)
            for flavor in section["flavors"]:
                assert any(flavor["flavor-name"] in (f["name"], f["id"]) for f in flavors), flavor
            for image in section["images"]:
                assert client.get_image(image["image-id"]) is not None, image
            for network in section["label-defaults"]["networks"]:
                assert client.get_network(network) is not None, network
            if "key-name" in section["label-defaults"]:
                assert client.get_keypair(section["label-defaults"]["key-name"]) is not None
        finally:
            client.close()
    # Both clouds were asked (each through its own credentials).
    assert alpha.count("/identity/v3/auth/tokens", method="POST") >= 1
    assert beta.count("/identity/v3/auth/tokens", method="POST") >= 1


# -- Zuul itself (scratch venv) ----------------------------------------------

ZUUL_CHECK = r'''
import configparser, json, sys, types
import yaml
import zuul.driver.bubblewrap
from zuul import configloader, model
from zuul.lib.connections import ConnectionRegistry

import zuul.provider

# The registry builds every driver; bubblewrap's asks `bwrap --version`.
zuul.driver.bubblewrap.BubblewrapDriver._parse_bwrap_version = lambda self: (0, 0, 0)
# A provider endpoint keeps its quota in ZooKeeper; there is none here.
zuul.provider.QuotaCache = lambda *args: None

data = json.load(sys.stdin)
conf = configparser.ConfigParser()
for name, settings in data["connections"].items():
    conf[f"connection {name}"] = {k: str(v) for k, v in settings.items()}
registry = ConnectionRegistry()
registry.configure(conf, providers=True)

context = model.SourceContext("review.example.org/devinfra/zuul-site", "devinfra/zuul-site",
                              "local", "master", "zuul.d/openstack.yaml")
unparsed = model.UnparsedConfig()
unparsed.extend(configloader.safe_load_yaml(yaml.safe_dump(data["objects"]), context))
pcontext = configloader.ParseContext(registry, None, None, None)
parsed = configloader.TenantParser.parseConfig(None, unparsed, pcontext)
errors = list(pcontext.error_list)
for kind in ("image", "flavor", "label", "section", "provider"):
    errors += getattr(parsed, f"{kind}_errors")
errors = [str(getattr(e, "error", e)) for e in errors]
if errors:
    sys.exit("Zuul refused the configuration: " + "; ".join(errors))
layout = types.SimpleNamespace()
for kind in ("images", "flavors", "labels", "sections", "providers"):
    names = [o.name for o in getattr(parsed, kind)]
    if len(names) != len(set(names)):
        sys.exit(f"duplicate {kind}: {names}")
    setattr(layout, kind, {o.name: o for o in getattr(parsed, kind)})
for label in layout.labels.values():
    label.validateReferences(layout)


result = {"connections": {}, "providers": {}}
for name, connection in registry.connections.items():
    result["connections"][name] = {"class": type(connection).__name__, "cloud": connection.cloud_name,
                                   "rate": connection.rate, "config_files": connection.config_files}
for provider_config in parsed.providers:
    flat = provider_config.flattenConfig(layout, registry.connections)
    connection = registry.connections[flat["connection"]]
    # Builds the real OpenstackProviderEndpoint, which reads clouds.yaml
    # (openstacksdk's search path) for the cloud and region: no request is sent.
    provider = connection.driver.getProvider(None, connection, "devinfra", provider_config.canonical_name,
                                             flat, "system")
    result["providers"][provider.name] = {
        "class": type(provider).__name__, "connection": provider.connection_name,
        "region": provider.region, "launch_timeout": provider.launch_timeout,
        "resource_limits": provider.resource_limits, "port_cleanup_interval": provider.port_cleanup_interval,
        "images": {i.name: {k: getattr(i, k) for k in (
            "type", "image_id", "username", "python_path", "connection_type", "connection_port",
            "config_drive", "format")} for i in provider.images.values()},
        "flavors": {f.name: f.flavor_name for f in provider.flavors.values()},
        "labels": {x.name: {k: getattr(x, k) for k in (
            "image", "flavor", "min_ready", "boot_timeout", "key_name", "networks", "security_groups",
            "auto_floating_ip", "boot_from_volume", "volume_size")} for x in provider.labels.values()},
    }
json.dump(result, sys.stdout, sort_keys=True)
'''


def zuul_label(image, flavor, networks, *, min_ready=None, boot_timeout=300, key_name=None,
               security_groups=(), floating_ip=True, boot_from_volume=False, volume_size=None):
    return {"image": image, "flavor": flavor, "min_ready": min_ready, "boot_timeout": boot_timeout,
            "key_name": key_name, "networks": networks, "security_groups": list(security_groups),
            "auto_floating_ip": floating_ip, "boot_from_volume": boot_from_volume, "volume_size": volume_size}


def zuul_image(image_id, username, *, config_drive=True):
    return {"type": "cloud", "image_id": image_id, "username": username, "python_path": "/usr/bin/python3",
            "connection_type": "ssh", "connection_port": 22, "config_drive": config_drive, "format": "qcow2"}


# What Zuul 14.3.0 made of EXAMPLE (its defaults filled in: ssh on port 22,
# config drive, floating IPs, 300 s boot timeout, ports cleaned every 600 s).
EXPECTED_ZUUL = {
    "connections": {
        "openstack-alpha": {"class": "OpenstackConnection", "cloud": "alpha", "rate": 2.0,
                            "config_files": None},
        "openstack-beta": {"class": "OpenstackConnection", "cloud": "beta", "rate": 5.0,
                           "config_files": None},
    },
    "providers": {
        "alpha": {
            "class": "OpenstackProvider", "connection": "openstack-alpha", "region": "RegionOne",
            "launch_timeout": 900, "resource_limits": {"instances": 20, "cores": 80, "ram": 163840},
            "port_cleanup_interval": 600,
            "images": {"debian-trixie": zuul_image("6c8a4a70-3a7e-4d8e-9a51-0e1c7b4b8f01", "zuul"),
                       "ubuntu-noble": zuul_image("0b7f5d9e-2c4e-4f0a-8d7b-6a3e1c2d9f10", "ubuntu")},
            "flavors": {"small": "m1.small", "large": "m1.large"},
            "labels": {
                "debian-trixie-small": zuul_label("debian-trixie", "small", ["private"], min_ready=2,
                                                  key_name="zuul"),
                "debian-trixie-large": zuul_label("debian-trixie", "large", ["private"], key_name="zuul",
                                                  boot_timeout=600, boot_from_volume=True, volume_size=80),
                "ubuntu-noble-small": zuul_label("ubuntu-noble", "small", ["private"], key_name="zuul"),
            },
        },
        "beta-two": {
            "class": "OpenstackProvider", "connection": "openstack-beta", "region": "RegionTwo",
            "launch_timeout": None, "resource_limits": {"instances": 10}, "port_cleanup_interval": 0,
            "images": {"debian-trixie": zuul_image("f3e2d1c0-b9a8-4765-8432-10fedcba9876", "zuul",
                                                   config_drive=False)},
            "flavors": {"small": "2c4g"},
            "labels": {"debian-trixie-small": zuul_label(
                "debian-trixie", "small", ["zuul-net", "storage-net"], min_ready=2,
                security_groups=["zuul-nodes"], floating_ip=False)},
        },
    },
}


def zuul_check(tmp_path, objects, connections, clouds=CLOUDS):
    """Run ZUUL_CHECK in the zuul venv, with clouds.yaml (when given) in its working directory:
    the first place of openstacksdk's search path (/etc/openstack/clouds.yaml is the last)."""
    python = os.environ.get("DEVINFRA_ZUUL_PYTHON")
    if not python:
        pytest.skip("set DEVINFRA_ZUUL_PYTHON to the python of a venv with zuul==14.3.0 to check the "
                    "rendered configuration with Zuul's own parsers")
    if clouds is not None:
        (tmp_path / "clouds.yaml").write_text(zuul_clouds_yaml(clouds, example()))
    # -I: nothing of this repository on the path (plugins/filter/zuul.py would shadow zuul);
    # HOME: no ~/.config/openstack/clouds.yaml of this machine.
    return subprocess.run([python, "-I", "-c", ZUUL_CHECK], cwd=tmp_path, capture_output=True, text=True,
                          input=json.dumps({"objects": objects, "connections": connections}),
                          env=dict(os.environ, HOME=str(tmp_path)), check=False, timeout=300)


def test_zuul_itself_accepts_the_configuration(tmp_path):
    run = zuul_check(tmp_path, zuul_openstack(example()), zuul_openstack_connections(example()))
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == EXPECTED_ZUUL


def test_zuul_needs_clouds_yaml_wherever_it_loads_the_configuration(tmp_path):
    # Building a provider reads the cloud's settings (its image format) from
    # clouds.yaml: the scheduler and zuul-web need the file as the launcher does.
    run = zuul_check(tmp_path, zuul_openstack(example()), zuul_openstack_connections(example()), clouds=None)
    assert run.returncode != 0
    assert "Cloud alpha was not found" in run.stderr


def test_zuul_check_refuses_what_zuul_refuses(tmp_path):
    objects = zuul_openstack(example())
    objects[7]["section"]["images"][0]["image-name"] = "debian-13"  # nodepool's key, not Zuul 14's
    run = zuul_check(tmp_path, objects, zuul_openstack_connections(example()))
    assert run.returncode != 0
    assert "extra keys not allowed @ data['images'][0]['image-name']" in run.stderr
