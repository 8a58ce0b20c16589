"""devinfra hosts: argument handling and the docker calls, with a fake docker."""

import json
import stat
import textwrap
from pathlib import Path

import pytest
import yaml

from devinfra import cli, hosts


def test_inventory_hosts_and_profiles(tmp_path):
    inv = tmp_path / "hosts.yaml"
    inv.write_text(textwrap.dedent("""\
        all:
          children:
            zuul:
              hosts:
                zuul01: {devinfra_host_profile: executor}
            web:
              hosts:
                web01:
                zuul01:
        """))
    specs = hosts.hosts_from_inventory(inv)
    assert [(s.name, s.profile) for s in specs] == [("zuul01", "executor"), ("web01", "systemd")]


def test_the_aio_inventory_is_readable():
    root = Path(__file__).resolve().parents[2]
    specs = hosts.hosts_from_inventory(root / "inventory/aio/hosts.yaml")
    assert {"bastion01", "zuul01"} <= {s.name for s in specs}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("all: [", ": not valid YAML: line 1, column 7"),
        ("hosts: {}", "expected a top-level 'all' group"),
        ("all: {hosts: {}}", "lists no hosts"),
        ("all: {hosts: [a, b]}", "all.hosts must be a mapping"),
        ("all: {hosts: {a: {devinfra_host_profile: vm}}}", "unknown profile 'vm'"),
    ],
)
def test_bad_inventories_are_explained(tmp_path, text, message):
    inv = tmp_path / "hosts.yaml"
    inv.write_text(text)
    with pytest.raises(hosts.HostsError, match=message):
        hosts.hosts_from_inventory(inv)


def test_hosts_json_from_molecule_platforms():
    specs = hosts.hosts_from_json(json.dumps([{"name": "a"}, {"name": "b", "profile": "executor",
                                                              "groups": ["x"]}]))
    assert [(s.name, s.profile) for s in specs] == [("a", "systemd"), ("b", "executor")]
    with pytest.raises(hosts.HostsError, match="needs a string 'name'"):
        hosts.hosts_from_json('[{"nom": "a"}]')
    with pytest.raises(hosts.HostsError, match="not valid JSON"):
        hosts.hosts_from_json("[")


def test_parse_host_arg():
    assert hosts.parse_host_arg("ze01:executor") == hosts.HostSpec("ze01", "executor")
    with pytest.raises(hosts.HostsError, match="empty host name"):
        hosts.parse_host_arg(":executor")


def test_instance_config_points_molecule_at_the_containers(tmp_path):
    path = tmp_path / "instance_config.yml"
    hosts.write_instance_config(path, [{"host": "base1", "container": "devinfra-m-base1"}])
    assert yaml.safe_load(path.read_text()) == [
        {"instance": "base1", "address": "devinfra-m-base1",
         "connection": "docker"}]


def test_missing_docker_command_is_a_clear_error():
    docker = hosts.Docker(binary="/nonexistent/docker")
    with pytest.raises(hosts.HostsError, match="docker command is not installed.*make docker"):
        docker.check()


@pytest.fixture
def fake_docker(tmp_path):
    """A docker stand-in: records its calls, answers `info` as told."""
    log = tmp_path / "calls"
    script = tmp_path / "docker"
    script.write_text(textwrap.dedent(f"""\
        #!/bin/sh
        echo "$@" >> {log}
        case "$1" in
          info) [ -e {tmp_path}/engine-up ] && echo 20.10 && exit 0
                echo "Cannot connect to the Docker daemon" >&2; exit 1 ;;
          ps) exit 0 ;;
          image) [ -e {tmp_path}/image-present ] && exit 0; exit 1 ;;
          network) exit 0 ;;
        esac
        """))
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return tmp_path, log


def test_no_engine_is_a_clear_error(fake_docker):
    tmp_path, _ = fake_docker
    docker = hosts.Docker(binary=str(tmp_path / "docker"))
    with pytest.raises(hosts.HostsError, match="no Docker engine answers.*Cannot connect.*make docker"):
        docker.check()


def test_missing_image_is_a_clear_error(fake_docker):
    tmp_path, _ = fake_docker
    (tmp_path / "engine-up").touch()
    docker = hosts.Docker(binary=str(tmp_path / "docker"))
    with pytest.raises(hosts.HostsError, match="image devinfra-trixie:latest does not exist.*make image"):
        hosts.create(docker, "t", [hosts.HostSpec("a")])


def test_run_uses_the_shared_systemd_settings(fake_docker):
    tmp_path, log = fake_docker
    docker = hosts.Docker(binary=str(tmp_path / "docker"))
    docker.run("molecule-x", hosts.HostSpec("ze01", "executor"))
    call = log.read_text().split()
    assert call[:2] == ["run", "--detach"]
    assert "devinfra-molecule-x-ze01" in call and "devinfra-molecule-x" in call
    for arg in ("SYS_ADMIN", "NET_ADMIN", "/sys/fs/cgroup:/sys/fs/cgroup:rw", "seccomp=unconfined"):
        assert arg in call
    assert "--privileged" not in call


def test_a_hosts_aliases_are_more_names_on_the_network(fake_docker, tmp_path):
    inv = tmp_path / "hosts.yaml"
    inv.write_text("all: {hosts: {zuul01: {devinfra_host_aliases: [logs.zuul01, zuul01.devinfra.test]}}}\n")
    [spec] = hosts.hosts_from_inventory(inv)
    assert spec.aliases == ("logs.zuul01", "zuul01.devinfra.test")
    _, log = fake_docker
    hosts.Docker(binary=str(tmp_path / "docker")).run("aio", spec)
    call = log.read_text().split()
    aliases = [call[i + 1] for i, arg in enumerate(call) if arg == "--network-alias"]
    assert aliases == ["zuul01", "logs.zuul01", "zuul01.devinfra.test"]


@pytest.mark.parametrize("aliases", ["logs.zuul01", "[bad name]", "[-x]", "[1]"])
def test_bad_aliases_are_named(tmp_path, aliases):
    inv = tmp_path / "hosts.yaml"
    inv.write_text(f"all: {{hosts: {{zuul01: {{devinfra_host_aliases: {aliases}}}}}}}\n")
    with pytest.raises(hosts.HostsError, match="host zuul01: devinfra_host_aliases must be a list of host"):
        hosts.hosts_from_inventory(inv)


def test_cli_reports_errors_without_a_traceback(capsys, monkeypatch):
    monkeypatch.setattr(hosts.Docker, "check", lambda self: (_ for _ in ()).throw(
        hosts.HostsError("no Docker engine answers")))
    assert cli.main(["hosts", "list"]) == 1
    assert "devinfra: error: no Docker engine answers" in capsys.readouterr().err


def test_cli_create_needs_exactly_one_source(capsys):
    assert cli.main(["hosts", "create"]) == 1
    assert "exactly one of" in capsys.readouterr().err


class RecordingDocker(hosts.Docker):
    """Answers docker calls from a table; records the state-changing ones."""

    def __init__(self, answers):
        super().__init__()
        self.answers = answers
        self.calls = []

    def _run(self, args, check=True):
        self.calls.append(list(args))
        for prefix, (rc, out) in self.answers.items():
            if " ".join(args).startswith(prefix):
                return hosts.subprocess.CompletedProcess(args, rc, out, "")
        return hosts.subprocess.CompletedProcess(args, 0, "", "")


def _container(running=True, networks=("devinfra-aio",), set_label="aio"):
    return json.dumps([{"State": {"Running": running},
                        "NetworkSettings": {"Networks": {n: {} for n in networks}},
                        "Config": {"Labels": {hosts.LABEL_SET: set_label}}}])


def test_mirror_joins_the_network_under_its_alias():
    docker = RecordingDocker({"inspect devinfra-aio-mirror01": (0, _container())})
    docker.attach("molecule-x", "devinfra-aio-mirror01", hosts.MIRROR_ALIAS)
    assert ["network", "connect", "--alias", "devinfra-mirror", "devinfra-molecule-x",
            "devinfra-aio-mirror01"] in docker.calls
    # Already on the network: nothing to do.
    docker = RecordingDocker({"inspect m": (0, _container(networks=("devinfra-molecule-x",)))})
    docker.attach("molecule-x", "m", hosts.MIRROR_ALIAS)
    assert not [c for c in docker.calls if c[:2] == ["network", "connect"]]


@pytest.mark.parametrize(("answer", "message"), [
    ((1, ""), "mirror container m does not exist.*make aio"),
    ((0, _container(running=False)), "mirror container m is not running"),
])
def test_a_missing_or_stopped_mirror_is_a_clear_error(answer, message):
    docker = RecordingDocker({"inspect m": answer})
    with pytest.raises(hosts.HostsError, match=message):
        docker.attach("molecule-x", "m", hosts.MIRROR_ALIAS)


def test_destroy_takes_a_foreign_mirror_off_the_network_only():
    network = json.dumps([{"Containers": {"own": {}, "mirror": {}}}])
    docker = RecordingDocker({
        "network inspect": (0, network),
        "inspect own": (0, _container(set_label="molecule-x")),
        "inspect mirror": (0, _container(set_label="aio")),
    })
    docker.detach_foreign("molecule-x")
    disconnects = [c for c in docker.calls if c[:2] == ["network", "disconnect"]]
    assert disconnects == [["network", "disconnect", "--force", "devinfra-molecule-x", "mirror"]]


def test_mirror_client_script_points_apt_pip_and_npm_at_the_mirror(tmp_path):
    (tmp_path / "apt").mkdir()
    sources = tmp_path / "apt" / "sources.list"
    sources.write_text("deb http://deb.debian.org/debian trixie main\n"
                       "deb http://deb.debian.org/debian-security trixie-security main\n")
    script = hosts.MIRROR_CLIENT_SCRIPT.replace("/etc/", f"{tmp_path}/")
    hosts.subprocess.run(["sh", "-c", script], check=True)
    assert sources.read_text().split("\n")[:2] == [
        "deb http://devinfra-mirror/debian trixie main",
        "deb http://devinfra-mirror/debian-security trixie-security main"]
    assert "index-url = http://devinfra-mirror/pypi/simple/" in (tmp_path / "pip.conf").read_text()
    assert (tmp_path / "npmrc").read_text() == "registry=http://devinfra-mirror/npm/\n"
