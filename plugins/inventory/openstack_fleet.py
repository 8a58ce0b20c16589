"""Ansible inventory plugin: the servers of several OpenStack clouds and regions."""

from __future__ import annotations

import collections
import contextlib
import gc
import importlib.util
import queue
import re
import threading
import time
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from ansible.errors import AnsibleParserError
from ansible.plugins.inventory import BaseInventoryPlugin, Cacheable, Constructable
from ansible.utils.unsafe_proxy import wrap_var

# devinfra/addresses.py of this checkout, by its path: the rule devinfra launch-node follows too.
_ADDRESSES = Path(__file__).resolve().parents[2] / "devinfra" / "addresses.py"
_spec = importlib.util.spec_from_file_location("_openstack_fleet_addresses", _ADDRESSES)
addresses = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(addresses)

try:
    import openstack
    from openstack import exceptions as sdk_exceptions
    from openstack.utils import maximum_supported_microversion
except ImportError:
    openstack = None

DOCUMENTATION = r"""
name: openstack_fleet
short_description: Servers of several OpenStack clouds and regions, listed concurrently
description:
  - Lists the servers of every cloud and region named in C(clouds.yaml) (or of
    those given in O(clouds)) at the same time, each within O(cloud_timeout)
    seconds, and adds them as hosts. The inventory source is a YAML file
    whose name ends in C(openstack_fleet.yaml) or C(openstack_fleet.yml).
  - Credentials come from C(clouds.yaml), read by openstacksdk. Each cloud
    region gets its own openstacksdk connection; its servers are read from
    Nova's C(/servers/detail), page after page, as plain JSON, and not turned
    into openstacksdk resource objects, which costs milliseconds of CPU per
    server. One cloud region takes its version discovery, authentication and
    one request per 1000 servers.
  - "Host names are server names (see O(duplicate_names)), or server IDs for
    servers Nova gives no name (those of a cell that is down). Host variables:
    C(ansible_host), the server's first floating IPv4 address, else floating
    IPv6, else fixed IPv4, else fixed IPv6 (not set for a server without
    addresses); and C(openstack), these fields of the server, as Nova gives
    them, under the names openstacksdk's C(Server) resource, and so
    P(openstack.cloud.openstack#inventory), gives them: C(id), C(name),
    C(status), C(addresses), C(metadata), C(flavor), C(image) (C({id}):
    Nova gives no image name), C(key_name), C(tags), C(security_groups),
    C(description), C(user_id), C(project_id), C(availability_zone), C(host_id),
    C(created_at), C(updated_at), C(launched_at), C(vm_state),
    C(task_state), C(power_state), C(is_locked), C(fault) (servers in
    ERROR), C(access_ipv4), C(access_ipv6), C(attached_volumes); a field
    Nova did not send is absent. C(openstack.flavor.name) is the flavor's
    C(original_name) and C(openstack.cloud) is C({name: <cloud>, region:
    <region>}), as in openstack.cloud's inventory. O(compose), O(groups) and
    O(keyed_groups) see these variables."
  - Everything that comes from the API (host names, group names made from
    it, every value) is marked unsafe, so it is never templated.
  - "Groups, made from what Nova's server list holds without extra calls, with
    every character that is not a letter, digit or underscore replaced by an
    underscore: C(cloud_<cloud>), C(region_<region>), C(cloud_<cloud>_<region>),
    C(az_<availability zone>), C(flavor_<flavor name>) (Nova gives the flavor
    name from API microversion 2.47), and the value of the metadata key
    O(metadata_group_key). Nova's server list has no image names, only image
    IDs, so there are no image groups."
  - A cloud region that fails (bad credentials, an error answer, no answer
    within O(cloud_timeout)) is reported with its name and the reason; see
    O(fail_on_errors).
  - With O(cache), the servers of all clouds are kept under the plugin's cache
    key together with the options that chose them (O(clouds),
    O(clouds_yaml_path), O(only_active)); a later run with the same options
    makes no API request. Nothing is cached when a cloud region failed.
options:
  plugin:
    description: Marks the file as an inventory source of this plugin.
    required: true
    choices: ['openstack_fleet']
  clouds:
    description:
      - The clouds to list, by their name in C(clouds.yaml). An entry is a
        cloud name, or a mapping with C(name) and C(regions), a list of
        region names of that cloud.
      - A cloud given without regions is listed in every region
        C(clouds.yaml) gives it (C(regions) or C(region_name)).
      - When empty, every cloud of C(clouds.yaml), in every region.
    type: list
    elements: raw
    default: []
  clouds_yaml_path:
    description:
      - The C(clouds.yaml) to read. When set, only this file is read and the
        C(OS_*) environment variables are ignored.
      - When not set, openstacksdk's usual search applies, the first found
        of E(OS_CLIENT_CONFIG_FILE), C(./clouds.yaml),
        C(~/.config/openstack/clouds.yaml) and C(/etc/openstack/clouds.yaml).
    type: path
  max_workers:
    description: How many cloud regions are listed at the same time.
    type: int
    default: 8
  cloud_timeout:
    description:
      - Seconds one cloud region may take, from connecting to its last page
        of servers. A cloud region over its time fails. It is also the
        timeout of each HTTP request.
    type: float
    default: 60
  fail_on_errors:
    description:
      - When true, one failing cloud region fails the whole inventory, and the
        error names every cloud region that failed and why.
      - When false, the servers of the others are still returned and a
        warning names each failed cloud region and the reason.
    type: bool
    default: true
  metadata_group_key:
    description:
      - A server metadata key; servers are put in a group named by that key's
        value (sanitized like every group name). Servers without it are not
        grouped by it.
    type: str
  only_active:
    description: Only list servers whose status is ACTIVE (filtered by Nova).
    type: bool
    default: false
  duplicate_names:
    description:
      - What to do when servers of the listed clouds share a name.
      - V(error) fails the inventory, naming each shared name and where its
        servers are.
      - V(suffix) registers every server that shares its name as
        C(<name>_<server id>); servers with a unique name keep it.
    type: str
    choices: ['error', 'suffix']
    default: error
requirements:
  - openstacksdk
extends_documentation_fragment:
  - constructed
  - inventory_cache
"""

EXAMPLES = r"""
# inventory/cloud.openstack_fleet.yaml
plugin: openstack_fleet
clouds:
  - vexxhost                      # every region clouds.yaml gives it
  - name: ovh
    regions: [GRA9, BHS5]
only_active: true
metadata_group_key: group         # a server with metadata group=zuul_executor is in group zuul_executor
fail_on_errors: false             # a cloud that is down only costs its servers (and a warning)
cloud_timeout: 30
keyed_groups:
  - key: openstack.metadata.env | default('none')
    prefix: env
compose:
  ansible_user: "'debian' if openstack.metadata.os | default('') == 'debian' else 'ubuntu'"
cache: true
cache_plugin: jsonfile
cache_connection: ~/.cache/ansible-inventory
cache_timeout: 600
"""

# The newest compute API microversion openstacksdk's Server resource knows;
# the server's flavor name needs 2.47 or later.
COMPUTE_MICROVERSION = "2.100"
# Nova's JSON keys of a server -> the names of the ``openstack`` host variable:
# the names openstacksdk's Server resource, and so openstack.cloud's inventory,
# gives them.
SERVER_FIELDS = {
    "id": "id", "name": "name", "status": "status", "addresses": "addresses", "metadata": "metadata",
    "flavor": "flavor", "image": "image", "key_name": "key_name", "tags": "tags",
    "security_groups": "security_groups", "description": "description", "user_id": "user_id",
    "tenant_id": "project_id", "OS-EXT-AZ:availability_zone": "availability_zone", "hostId": "host_id",
    "created": "created_at", "updated": "updated_at", "OS-SRV-USG:launched_at": "launched_at",
    "OS-EXT-STS:vm_state": "vm_state", "OS-EXT-STS:task_state": "task_state",
    "OS-EXT-STS:power_state": "power_state", "locked": "is_locked", "fault": "fault",
    "accessIPv4": "access_ipv4", "accessIPv6": "access_ipv6",
    "os-extended-volumes:volumes_attached": "attached_volumes",
}
def server_vars(raw: dict, cloud: str, region: str) -> dict:
    """The ``openstack`` host variable of one server of Nova's list."""
    server = {name: raw[key] for key, name in SERVER_FIELDS.items() if key in raw}
    flavor, image = server.get("flavor"), server.get("image")
    if isinstance(flavor, dict) and "original_name" in flavor:
        server["flavor"] = {"name": flavor["original_name"], **flavor}
    if isinstance(image, dict):  # not "", the image of a server booted from a volume
        server["image"] = {"id": image.get("id")}
    server["cloud"] = {"name": cloud, "region": region}
    return server


def group_name(*parts: str) -> str:
    """A valid Ansible group name: the parts joined by underscores, every
    other character replaced by an underscore, never starting with a digit."""
    name = re.sub(r"\W", "_", "_".join(parts), flags=re.ASCII)
    return f"_{name}" if name[:1].isdigit() else name


def list_servers(region_config, only_active: bool) -> list[dict]:
    """Every server of one cloud region (a CloudRegion), as Nova's JSON."""
    conn = openstack.connection.Connection(config=region_config)
    try:
        compute = conn.compute
        microversion = maximum_supported_microversion(compute, COMPUTE_MICROVERSION)
        query = {"status": "ACTIVE"} if only_active else {}
        servers = []
        while True:
            response = compute.get("/servers/detail", params=query, microversion=microversion)
            sdk_exceptions.raise_from_response(response)
            page = response.json()
            servers += page["servers"]
            # A full page links to the next one. Only its query is used: the
            # link's host and scheme are wrong behind some proxies.
            link = next((lk["href"] for lk in page.get("servers_links", []) if lk.get("rel") == "next"), None)
            if link is None:
                return servers
            next_query = dict(parse_qsl(urlsplit(link).query))
            if next_query == query:
                raise sdk_exceptions.SDKException("Nova's next page link repeats the last request")
            query = next_query
    finally:
        conn.close()


@contextlib.contextmanager
def gc_paused():
    """Pause Python's cyclic garbage collector for a while.

    Building the variables of thousands of hosts, objects that are not
    garbage, makes it scan the growing heap again and again for nothing; for
    10,000 servers the pause saves about a tenth of the run.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def run_bounded(jobs: list, work, max_workers: int, timeout: float) -> dict:
    """Run ``work(job)`` for each job, ``max_workers`` at a time, and return
    {job: its result or the exception it raised}.

    A job still running ``timeout`` seconds after it started gets a
    TimeoutError and is abandoned: a thread cannot be stopped, so each job
    runs on a daemon thread, which neither blocks the next jobs nor the exit
    of the process.
    """
    results: dict = {}
    finished: queue.SimpleQueue = queue.SimpleQueue()
    pending = collections.deque(jobs)
    deadlines: dict = {}

    def run(job):
        try:
            outcome = work(job)
        except Exception as exc:  # reported to the caller, whatever it is
            outcome = exc
        finished.put((job, outcome))

    while pending or deadlines:
        while pending and len(deadlines) < max_workers:
            job = pending.popleft()
            deadlines[job] = time.monotonic() + timeout
            threading.Thread(target=run, args=(job,), name=f"openstack_fleet {job}", daemon=True).start()
        try:
            job, outcome = finished.get(timeout=max(0.0, min(deadlines.values()) - time.monotonic()))
            if job in deadlines:  # not one that was abandoned
                del deadlines[job]
                results[job] = outcome
        except queue.Empty:
            now = time.monotonic()
            for job in [j for j, deadline in deadlines.items() if deadline <= now]:
                del deadlines[job]
                results[job] = TimeoutError(f"no complete answer within {timeout:g} seconds")
    return results


class InventoryModule(BaseInventoryPlugin, Constructable, Cacheable):
    """Servers of several OpenStack clouds and regions."""

    NAME = "openstack_fleet"

    def verify_file(self, path):
        return super().verify_file(path) and path.endswith(("openstack_fleet.yaml", "openstack_fleet.yml"))

    def parse(self, inventory, loader, path, cache=True):
        super().parse(inventory, loader, path, cache)
        if openstack is None:
            raise AnsibleParserError("the openstack_fleet inventory plugin needs openstacksdk")
        self._read_config_data(path)
        if self.get_option("max_workers") < 1 or self.get_option("cloud_timeout") <= 0:
            raise AnsibleParserError("openstack_fleet: max_workers and cloud_timeout must be positive")

        selection = {"clouds": self.get_option("clouds"), "only_active": self.get_option("only_active"),
                     "clouds_yaml_path": self.get_option("clouds_yaml_path")}
        cache_key = self.get_cache_key(path)
        with gc_paused():
            servers = None
            if self.get_option("cache") and cache:
                cached = self._cache.get(cache_key)
                if cached and cached.get("selection") == selection:
                    servers = cached["servers"]
            if servers is None:
                servers, failures = self._fetch()
                if failures:
                    self._report(failures)
                elif self.get_option("cache"):
                    self._cache[cache_key] = {"selection": selection, "servers": servers}
            self._populate(servers)

    def _targets(self, config) -> list[tuple[str, str]]:
        """The (cloud, region) pairs to list, from O(clouds) and clouds.yaml."""
        configured = collections.defaultdict(list)
        for region in config.get_all():
            configured[region.name].append(region.region_name or "")
        every_cloud = config.get_cloud_names()
        if every_cloud == ["defaults"]:  # made up by openstacksdk when no cloud is configured
            every_cloud = []
        targets = []
        for entry in self.get_option("clouds") or every_cloud:
            if isinstance(entry, str):
                name, regions = entry, configured.get(entry) or [""]
            elif isinstance(entry, dict) and isinstance(entry.get("name"), str) \
                    and isinstance(entry.get("regions", []), list):
                name, regions = entry["name"], entry.get("regions") or configured.get(entry["name"]) or [""]
            else:
                raise AnsibleParserError(f"openstack_fleet: clouds: {entry!r} is neither a cloud name nor "
                                         "a mapping with a name and a list of regions")
            targets += [(name, region) for region in regions if (name, region) not in targets]
        if not targets:
            raise AnsibleParserError("openstack_fleet: no cloud to list: "
                                     + (f"{config.config_filename} names none" if config.config_filename
                                        else "no clouds.yaml found"))
        return targets

    def _fetch(self) -> tuple[list[dict], list[str]]:
        """List the servers of every cloud region: (servers, failures)."""
        path = self.get_option("clouds_yaml_path")
        try:
            config = openstack.config.OpenStackConfig(config_files=[path], load_envvars=False) if path \
                else openstack.config.OpenStackConfig()
        except Exception as exc:
            raise AnsibleParserError(f"openstack_fleet: cannot read clouds.yaml: {exc}") from exc
        timeout, only_active = self.get_option("cloud_timeout"), self.get_option("only_active")
        targets = self._targets(config)
        # Resolved here, not in the worker threads: openstacksdk's config loader is not made for threads.
        region_configs, results = {}, {}
        for cloud, region in targets:
            try:
                region_configs[cloud, region] = config.get_one(cloud, region_name=region, api_timeout=timeout)
            except Exception as exc:  # an unknown cloud or region, an incomplete auth section...
                results[cloud, region] = exc

        def work(target):
            return list_servers(region_configs[target], only_active)

        results |= run_bounded(list(region_configs), work, self.get_option("max_workers"), timeout)
        servers, failures = [], []
        for cloud, region in targets:
            outcome = results[cloud, region]
            where = f"cloud {cloud}" + (f" region {region}" if region else "")
            if isinstance(outcome, Exception):
                failures.append(f"{where}: {str(outcome) or type(outcome).__name__}")
            else:
                servers += [server_vars(raw, cloud, region) for raw in outcome]
        return servers, failures

    def _report(self, failures: list[str]) -> None:
        if self.get_option("fail_on_errors"):
            raise AnsibleParserError("openstack_fleet: cannot list servers of " + "; ".join(failures))
        cached = " (nothing cached)" if self.get_option("cache") else ""
        for failure in failures:
            self.display.warning(f"openstack_fleet: skipped {failure}{cached}")

    def _hostnames(self, servers: list[dict]) -> list[str]:
        """Each server's inventory host name (see O(duplicate_names))."""
        # Nova leaves the name out for the servers of a cell that is down.
        names = [s.get("name") or s["id"] for s in servers]
        count = collections.Counter(names)
        if self.get_option("duplicate_names") == "error" and len(count) < len(names):
            where = collections.defaultdict(list)
            for name, s in zip(names, servers, strict=True):
                if count[name] > 1:
                    where[name].append(f"{s['cloud']['name']}/{s['cloud']['region']} id {s['id']}")
            raise AnsibleParserError("openstack_fleet: servers share a name (see duplicate_names): "
                                     + "; ".join(f"{name} ({', '.join(ids)})" for name, ids in where.items()))
        return [name if count[name] == 1 else f"{name}_{s['id']}"
                for name, s in zip(names, servers, strict=True)]

    def _groups(self, server: dict) -> list[str]:
        cloud, region = server["cloud"]["name"], server["cloud"]["region"]
        groups = [group_name("cloud", cloud)]
        if region:
            groups += [group_name("region", region), group_name("cloud", cloud, region)]
        if server.get("availability_zone"):
            groups.append(group_name("az", server["availability_zone"]))
        if (server.get("flavor") or {}).get("name"):
            groups.append(group_name("flavor", server["flavor"]["name"]))
        key = self.get_option("metadata_group_key")
        value = (server.get("metadata") or {}).get(key) if key else None
        if value:
            groups.append(group_name(str(value)))
        return groups

    def _populate(self, servers: list[dict]) -> None:
        strict = self.get_option("strict")
        compose, conditionals, keyed = (self.get_option(o) for o in ("compose", "groups", "keyed_groups"))
        for hostname, server in zip(self._hostnames(servers), servers, strict=True):
            host = self.inventory.add_host(wrap_var(hostname))
            hostvars = {"openstack": wrap_var(server)}
            address = addresses.preferred(server.get("addresses"))
            if address:
                hostvars["ansible_host"] = wrap_var(address)
            for name, value in hostvars.items():
                self.inventory.set_variable(host, name, value)
            for group in self._groups(server):
                self.inventory.add_child(self.inventory.add_group(wrap_var(group)), host)
            self._set_composite_vars(compose, hostvars, host, strict=strict)
            self._add_host_to_composed_groups(conditionals, hostvars, host, strict=strict)
            self._add_host_to_keyed_groups(keyed, hostvars, host, strict=strict)
