"""devinfra launch-node: create a server, record it in the inventory, bootstrap it.

Steps, each with a clear error naming what failed:

1. Connect to the cloud (openstacksdk, clouds.yaml).
2. Reuse the server if one with that name exists (never create a second),
   otherwise resolve flavor, image, network and key, and create it.
3. Wait for ACTIVE within the time limit; optionally create and attach a
   data volume.
4. Add the host to inventory/base/hosts.yaml, keeping comments and order.
5. Print the DNS records to add; optionally run playbooks/base.yaml
   limited to the new host.

If a step after the creation fails, whatever this run created (server,
volume) is deleted before the error is reported.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devinfra import addresses
from devinfra.errors import DevinfraError
from devinfra.inventory_file import add_host


class LaunchError(DevinfraError):
    """A launch that failed (what it left behind is said in the message)."""


@dataclass
class LaunchRequest:
    name: str
    cloud: str
    flavor: str
    image: str
    region: str | None = None
    network: str | None = None
    key: str | None = None
    volume_size: int | None = None
    timeout: float = 600.0
    poll_interval: float = 5.0
    inventory: Path = Path("inventory/base/hosts.yaml")
    region_var: str | None = None


@dataclass
class LaunchResult:
    server_id: str
    created: bool
    ipv4: str | None
    ipv6: str | None
    inventory_change: str
    volume_id: str | None = None
    notes: list[str] = field(default_factory=list)


def dns_records(name: str, ipv4: str | None, ipv6: str | None, ttl: int = 3600) -> list[str]:
    records = []
    if ipv4:
        records.append(f"{name}. {ttl} IN A {ipv4}")
    if ipv6:
        records.append(f"{name}. {ttl} IN AAAA {ipv6}")
    return records


def _find(finder: Callable[..., Any], kind: str, value: str, cloud: str, required: bool = True) -> Any:
    """Look a resource up by name or id; None when absent and not required."""
    from openstack import exceptions

    try:
        return finder(value, ignore_missing=False)
    except exceptions.NotFoundException:
        if required:
            raise LaunchError(f"{kind} {value!r} does not exist on cloud {cloud!r}") from None
        return None
    except exceptions.SDKException as exc:  # e.g. an ambiguous name
        raise LaunchError(f"{kind} {value!r} on cloud {cloud!r}: {exc}") from exc


class _Launch:
    def __init__(self, conn: Any, req: LaunchRequest, log: Callable[[str], None]) -> None:
        self.conn = conn
        self.req = req
        self.log = log
        self.created: list[tuple[str, Any]] = []

    def server(self) -> tuple[Any, bool]:
        req, compute = self.req, self.conn.compute
        existing = _find(compute.find_server, "server", req.name, req.cloud, required=False)
        if existing is not None:
            self.log(f"server {req.name} exists ({existing.id}, {existing.status}): reusing it")
            return existing, False
        flavor = _find(compute.find_flavor, "flavor", req.flavor, req.cloud)
        image = _find(self.conn.image.find_image, "image", req.image, req.cloud)
        attrs: dict[str, Any] = {
            "name": req.name,
            "flavor_id": flavor.id,
            "image_id": image.id,
            "metadata": {"launched-by": "devinfra launch-node"},
        }
        if req.network:
            network = _find(self.conn.network.find_network, "network", req.network, req.cloud)
            attrs["networks"] = [{"uuid": network.id}]
        if req.key:
            _find(compute.find_keypair, "key pair", req.key, req.cloud)
            attrs["key_name"] = req.key
        server = compute.create_server(**attrs)
        self.created.append(("server", server))
        self.log(f"created server {req.name} ({server.id})")
        return server, True

    def wait_active(self, server: Any) -> Any:
        self.log(f"waiting up to {self.req.timeout:.0f} s for {self.req.name} to be ACTIVE")
        return self.conn.compute.wait_for_server(
            server, status="ACTIVE", failures=["ERROR"],
            interval=self.req.poll_interval, wait=self.req.timeout)

    def volume(self, server: Any) -> str:
        storage = self.conn.block_storage
        volume = storage.create_volume(size=self.req.volume_size, name=f"{self.req.name}-data")
        self.created.append(("volume", volume))
        volume = storage.wait_for_status(volume, status="available", failures=["error"],
                                         interval=self.req.poll_interval, wait=int(self.req.timeout))
        self.conn.compute.create_volume_attachment(server, volume=volume)
        storage.wait_for_status(volume, status="in-use", failures=["error"],
                                interval=self.req.poll_interval, wait=int(self.req.timeout))
        self.log(f"attached volume {volume.id} ({self.req.volume_size} GB)")
        return volume.id

    def undo(self) -> list[str]:
        """Delete what this run created, newest first; report what happened."""
        report = []
        for kind, resource in reversed(self.created):
            try:
                if kind == "server":
                    self.conn.compute.delete_server(resource, ignore_missing=True)
                    self.conn.compute.wait_for_delete(resource, interval=self.req.poll_interval,
                                                      wait=self.req.timeout)
                else:
                    self.conn.block_storage.delete_volume(resource, ignore_missing=True)
                report.append(f"deleted {kind} {resource.id}")
            except Exception as exc:  # keep cleaning; say what is left behind
                report.append(f"could not delete {kind} {resource.id}: {exc}")
        return report


def launch(req: LaunchRequest, connect: Callable[..., Any] | None = None,
           log: Callable[[str], None] = print) -> LaunchResult:
    if connect is None:
        import openstack

        connect = openstack.connect
    try:
        conn = connect(cloud=req.cloud, region_name=req.region)
    except Exception as exc:
        raise LaunchError(f"cannot connect to cloud {req.cloud!r}: {exc}") from exc

    run = _Launch(conn, req, log)
    step = "looking up or creating the server"
    try:
        server, created = run.server()
        step = "waiting for the server to be ACTIVE"
        server = run.wait_active(server)
        volume_id = None
        if req.volume_size and created:
            step = "creating and attaching the volume"
            volume_id = run.volume(server)
        ipv4, ipv6 = addresses.by_version(server.addresses)
        if not (ipv4 or ipv6):
            step = "reading the server's addresses"
            raise LaunchError("the server has no address")
        step = f"adding the host to {req.inventory}"
        hostvars: dict[str, Any] = {"ansible_host": addresses.preferred(server.addresses)}
        if req.region_var:
            hostvars["region"] = req.region_var
        change = add_host(req.inventory, req.name, hostvars)
    except Exception as exc:
        cleanup = run.undo()
        detail = f"; {'; '.join(cleanup)}" if cleanup else ""
        raise LaunchError(f"launch of {req.name} failed while {step}: {exc}{detail}") from exc

    notes = [] if not (req.volume_size and not created) else [
        "the server existed already: no volume was created or attached"]
    return LaunchResult(server_id=server.id, created=created, ipv4=ipv4, ipv6=ipv6,
                        inventory_change=change, volume_id=volume_id, notes=notes)


def run_base_playbook(name: str, private_inventory: Path | None) -> int:
    """Run the base playbook for the new host only, with the repository's config."""
    argv = ["ansible-playbook", "-i", "inventory/base/hosts.yaml",
            "-i", "inventory/service/groups.yaml"]
    if private_inventory is not None:
        argv += ["-i", str(private_inventory)]
    argv += ["playbooks/base.yaml", "--limit", name]
    print("running:", " ".join(argv), file=sys.stderr)
    return subprocess.run(argv, check=False).returncode
