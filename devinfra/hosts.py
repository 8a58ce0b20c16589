"""Local test hosts: systemd containers that stand in for the platform's servers.

The AIO (inventory/aio/) and every molecule scenario get their hosts from here,
so the container settings that make systemd boot on these machines live in
one place: PROFILES below.

Hosts belong to a *set* (``aio``, ``molecule-base``, ...). A set has its own
Docker network, ``devinfra-<set>``, on which every host answers to its short
name (Docker's DNS), and each container is named ``devinfra-<set>-<host>``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from devinfra import checks, safe_yaml
from devinfra.errors import DevinfraError

DEFAULT_IMAGE = "devinfra-trixie:latest"
LABEL_SET = "org.devinfra.set"
LABEL_HOST = "org.devinfra.host"

# What a container needs so that systemd boots to "running" on these
# machines (`--privileged` is refused here): see
# ../shared/notes/platform-facts.md.
SYSTEMD_ARGS = (
    "--cap-add", "SYS_ADMIN",
    "--cap-add", "NET_ADMIN",
    "--tmpfs", "/run",
    "--tmpfs", "/run/lock",
    "--volume", "/sys/fs/cgroup:/sys/fs/cgroup:rw",
    "--cgroupns", "host",
    "--stop-signal", "SIGRTMIN+3",
    # A reboot inside (systemd exits) or a restart of the Docker engine
    # brings the host back, as a machine comes back: same disk, fresh /run.
    "--restart", "unless-stopped",
)

# Profiles add to SYSTEMD_ARGS. "executor" lets bubblewrap (the Zuul
# executor's sandbox) create its namespaces inside the container.
PROFILES: dict[str, tuple[str, ...]] = {
    "systemd": (),
    "executor": (
        "--security-opt", "seccomp=unconfined",
        "--security-opt", "apparmor=unconfined",
        "--security-opt", "systempaths=unconfined",
    ),
}


# A package mirror (the mirror role, e.g. the AIO's mirror01) that new hosts
# install through: its container joins the set's network under this alias,
# and each new host's apt, pip and npm point at it (create(mirror=...)).
MIRROR_ALIAS = "devinfra-mirror"
MIRROR_CLIENT_SCRIPT = f"""set -e
sed -i -E 's#https?://deb\\.debian\\.org/debian(-security)?#http://{MIRROR_ALIAS}/debian\\1#' \\
  /etc/apt/sources.list
printf '[global]\\nindex-url = http://{MIRROR_ALIAS}/pypi/simple/\\ntrusted-host = {MIRROR_ALIAS}\\n' \\
  > /etc/pip.conf
printf 'registry=http://{MIRROR_ALIAS}/npm/\\n' > /etc/npmrc
"""


class HostsError(DevinfraError):
    """A failure the user can act on; the message says what and how."""


# A network alias: a DNS host name.


@dataclass(frozen=True)
class HostSpec:
    name: str
    profile: str = "systemd"
    image: str = DEFAULT_IMAGE
    # More names other hosts of the set reach it by (its vhosts' names).
    aliases: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.profile not in PROFILES:
            raise HostsError(
                f"host {self.name!r}: unknown profile {self.profile!r} "
                f"(known: {', '.join(sorted(PROFILES))})"
            )


def container_name(host_set: str, host: str) -> str:
    return f"devinfra-{host_set}-{host}"


def network_name(host_set: str) -> str:
    return f"devinfra-{host_set}"


def parse_host_arg(arg: str, image: str = DEFAULT_IMAGE) -> HostSpec:
    """``name`` or ``name:profile`` from the command line."""
    name, _, profile = arg.partition(":")
    if not name:
        raise HostsError(f"empty host name in {arg!r}")
    return HostSpec(name=name, profile=profile or "systemd", image=image)


def hosts_from_inventory(path: Path, image: str = DEFAULT_IMAGE) -> list[HostSpec]:
    """Every host of a YAML inventory, with its ``devinfra_host_profile`` and ``devinfra_host_aliases`` vars.

    Only the static YAML inventory format is read (hosts and children under
    ``all``), which is what inventory/aio/hosts.yaml is.
    """
    try:
        data = safe_yaml.load(path)
    except safe_yaml.ReadError as exc:
        raise HostsError(f"inventory {path}: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("all"), dict):
        raise HostsError(f"inventory {path}: expected a top-level 'all' group")

    found: dict[str, tuple[str, tuple[str, ...]]] = {}

    def walk(group: dict, where: str) -> None:
        hosts = group.get("hosts") or {}
        if not isinstance(hosts, dict):
            raise HostsError(f"inventory {path}: {where}.hosts must be a mapping")
        for name, hostvars in hosts.items():
            hostvars = hostvars or {}
            aliases = hostvars.get("devinfra_host_aliases", [])
            if not isinstance(aliases, list) or not all(checks.host_name(a)
                                                        for a in aliases):
                raise HostsError(f"inventory {path}: host {name}: devinfra_host_aliases must be a list of"
                                 " host names")
            if name in found and not hostvars:
                continue
            found[str(name)] = (hostvars.get("devinfra_host_profile", "systemd"), tuple(aliases))
        children = group.get("children") or {}
        if not isinstance(children, dict):
            raise HostsError(f"inventory {path}: {where}.children must be a mapping")
        for child, body in children.items():
            walk(body or {}, f"{where}.children.{child}")

    walk(data["all"], "all")
    if not found:
        raise HostsError(f"inventory {path} lists no hosts")
    return [HostSpec(name=n, profile=p, image=image, aliases=a) for n, (p, a) in found.items()]


def hosts_from_json(text: str, image: str = DEFAULT_IMAGE) -> list[HostSpec]:
    """Hosts from a JSON list of ``{"name": ..., "profile": ..., "image": ...}``.

    Molecule's platforms list is passed this way; keys other than these
    three are molecule's own and ignored.
    """
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise HostsError(f"--hosts-json is not valid JSON: {exc}") from exc
    if not isinstance(data, list) or not data:
        raise HostsError("--hosts-json must be a non-empty list of hosts")
    specs = []
    for index, item in enumerate(data):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise HostsError(f"--hosts-json entry #{index} needs a string 'name': {item!r}")
        specs.append(HostSpec(
            name=item["name"],
            profile=item.get("profile", "systemd"),
            image=item.get("image", image),
        ))
    return specs


def write_instance_config(path: Path, rows: Sequence[dict]) -> None:
    """Tell molecule how to reach each host: Docker exec into its container."""
    config = [
        {
            "instance": row["host"],
            "address": row["container"],
            # The short name (Ansible routes it to community.docker.docker):
            # mitogen recognises it and replaces it with its own transport.
            "connection": "docker",
        }
        for row in rows
    ]
    path.write_text(yaml.safe_dump(config, default_flow_style=False))


class Docker:
    """The few docker CLI calls we need, with errors that say what to do."""

    def __init__(self, binary: str = "docker") -> None:
        self.binary = binary

    def check(self) -> None:
        if shutil.which(self.binary) is None:
            raise HostsError(
                "the docker command is not installed: run `make docker` "
                "(tools/ensure-docker.sh installs Debian's docker.io and starts dockerd)"
            )
        proc = self._run(["info", "--format", "{{.ServerVersion}}"], check=False)
        if proc.returncode != 0:
            raise HostsError(
                "no Docker engine answers (`docker info` failed: "
                f"{proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else 'no output'}); "
                "start one with `make docker`"
            )

    def _run(self, args: Sequence[str], check: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run(
            [self.binary, *args], capture_output=True, text=True, check=False
        )
        if check and proc.returncode != 0:
            raise HostsError(f"docker {' '.join(args[:2])} failed: {proc.stderr.strip()}")
        return proc

    def image_exists(self, image: str) -> bool:
        return self._run(["image", "inspect", image], check=False).returncode == 0

    def ensure_network(self, host_set: str) -> None:
        net = network_name(host_set)
        if self._run(["network", "inspect", net], check=False).returncode != 0:
            self._run(["network", "create", "--label", f"{LABEL_SET}={host_set}", net])

    def remove_network(self, host_set: str) -> None:
        net = network_name(host_set)
        if self._run(["network", "inspect", net], check=False).returncode == 0:
            self._run(["network", "rm", net])

    def containers(self, host_set: str | None = None) -> list[dict]:
        label = LABEL_SET if host_set is None else f"{LABEL_SET}={host_set}"
        ids = self._run(["ps", "-aq", "--filter", f"label={label}"]).stdout.split()
        if not ids:
            return []
        return json.loads(self._run(["inspect", *ids]).stdout)

    def run(self, host_set: str, spec: HostSpec) -> None:
        self._run([
            "run", "--detach",
            "--name", container_name(host_set, spec.name),
            "--hostname", spec.name,
            "--network", network_name(host_set),
            "--network-alias", spec.name,
            *[arg for alias in spec.aliases for arg in ("--network-alias", alias)],
            "--label", f"{LABEL_SET}={host_set}",
            "--label", f"{LABEL_HOST}={spec.name}",
            *SYSTEMD_ARGS,
            *PROFILES[spec.profile],
            spec.image,
        ])

    def attach(self, host_set: str, container: str, alias: str) -> None:
        """Put another set's container on this set's network under ``alias``."""
        inspect = self._run(["inspect", container], check=False)
        if inspect.returncode != 0:
            raise HostsError(
                f"mirror container {container} does not exist: deploy the mirror first "
                "(`make aio` makes devinfra-aio-mirror01) or unset DEVINFRA_MIRROR"
            )
        info = json.loads(inspect.stdout)[0]
        if not info["State"]["Running"]:
            raise HostsError(
                f"mirror container {container} is not running: start it or unset DEVINFRA_MIRROR")
        if network_name(host_set) not in (info["NetworkSettings"]["Networks"] or {}):
            self._run(["network", "connect", "--alias", alias, network_name(host_set), container])

    def detach_foreign(self, host_set: str) -> None:
        """Take containers of other sets (a mirror) off this set's network."""
        net = network_name(host_set)
        proc = self._run(["network", "inspect", net], check=False)
        if proc.returncode != 0:
            return
        for cid in (json.loads(proc.stdout)[0].get("Containers") or {}):
            labels = json.loads(self._run(["inspect", cid]).stdout)[0]["Config"]["Labels"] or {}
            if labels.get(LABEL_SET) != host_set:
                self._run(["network", "disconnect", "--force", net, cid])

    def execute(self, name: str, script: str) -> None:
        self._run(["exec", name, "sh", "-c", script])

    def start(self, name: str) -> None:
        self._run(["start", name])

    def remove(self, names: Iterable[str]) -> None:
        names = list(names)
        if names:
            self._run(["rm", "--force", "--volumes", *names])

    def system_state(self, name: str) -> str:
        proc = self._run(["exec", name, "systemctl", "is-system-running"], check=False)
        return proc.stdout.strip() or "unknown"


def describe(container: dict) -> dict:
    labels = container["Config"]["Labels"] or {}
    networks = container["NetworkSettings"]["Networks"] or {}
    address = next((n.get("IPAddress") for n in networks.values() if n.get("IPAddress")), "")
    return {
        "set": labels.get(LABEL_SET, ""),
        "host": labels.get(LABEL_HOST, ""),
        "container": container["Name"].lstrip("/"),
        "state": container["State"]["Status"],
        "address": address,
        "image": container["Config"]["Image"],
    }


def create(
    docker: Docker,
    host_set: str,
    specs: Sequence[HostSpec],
    timeout: float = 90.0,
    mirror: str | None = None,
) -> list[dict]:
    """Create (or start) the set's hosts and wait until systemd is up in each.

    ``mirror`` names a running mirror container (e.g. devinfra-aio-mirror01):
    it joins the set's network as MIRROR_ALIAS and the new hosts install
    their packages through it.
    """
    docker.check()
    for image in sorted({s.image for s in specs}):
        if not docker.image_exists(image):
            raise HostsError(
                f"image {image} does not exist: build it with `make image` "
                "(tools/build-image.sh)"
            )
    docker.ensure_network(host_set)
    if mirror:
        docker.attach(host_set, mirror, MIRROR_ALIAS)
    existing = {describe(c)["host"]: c for c in docker.containers(host_set)}
    fresh = []
    for spec in specs:
        current = existing.get(spec.name)
        if current is None:
            docker.run(host_set, spec)
            fresh.append(spec)
        elif current["State"]["Status"] != "running":
            docker.start(container_name(host_set, spec.name))

    deadline = time.monotonic() + timeout
    pending = {container_name(host_set, s.name) for s in specs}
    states: dict[str, str] = {}
    while pending:
        for name in sorted(pending):
            states[name] = docker.system_state(name)
            # "degraded" means booted with a failed unit: the host is usable
            # and the roles' tests judge the units they care about.
            if states[name] in ("running", "degraded"):
                pending.discard(name)
        if pending and time.monotonic() > deadline:
            detail = ", ".join(f"{n}: {states[n]}" for n in sorted(pending))
            raise HostsError(f"systemd did not come up within {timeout:.0f} s ({detail})")
        if pending:
            time.sleep(0.5)
    if mirror:
        for spec in fresh:
            docker.execute(container_name(host_set, spec.name), MIRROR_CLIENT_SCRIPT)
    wanted = {s.name for s in specs}
    return [d for d in map(describe, docker.containers(host_set)) if d["host"] in wanted]


def destroy(docker: Docker, host_set: str) -> list[str]:
    docker.check()
    names = [describe(c)["container"] for c in docker.containers(host_set)]
    docker.remove(names)
    docker.detach_foreign(host_set)
    docker.remove_network(host_set)
    return names


def listing(docker: Docker, host_set: str | None = None) -> list[dict]:
    docker.check()
    rows = [describe(c) for c in docker.containers(host_set)]
    return sorted(rows, key=lambda r: (r["set"], r["host"]))
