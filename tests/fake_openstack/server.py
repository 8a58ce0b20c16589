"""A SIMULATED OpenStack API: one in-process HTTP server per simulated cloud.

This is not OpenStack and talks to no real cloud. It answers the requests
openstacksdk and keystoneauth make for password authentication, listing and
launching servers, and creating and attaching volumes, with bodies shaped
like the real services' (Keystone v3, Nova v2.1, Neutron v2.0, Glance v2,
Cinder v3), so that code using openstacksdk can be tested and benchmarked on
127.0.0.1. README.md in this directory lists what it covers and what not.

Catalog of one simulated cloud at ``base = http://127.0.0.1:<port>``::

    {base}/identity                       Keystone v3 (global)
    {base}/{region}/compute/v2.1          Nova
    {base}/{region}/network               Neutron (v2.0)
    {base}/{region}/image                 Glance (v2)
    {base}/{region}/volume/v3/{project}   Cinder (catalog types volumev3, block-storage)

Each region has its own servers, volumes, flavors, images, networks and
keypairs. Injectable behaviour: ``latency`` (seconds added to every request),
``fail()`` (an HTTP status for the next N requests whose path contains a
string), ``hang()`` (requests that stall), ``error_on_create`` (server names
that go to ERROR when launched), and ``requests`` / ``count()`` (the log of
every request answered).
"""

from __future__ import annotations

import ipaddress
import json
import re
import secrets
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import Message
from http.server import ThreadingHTTPServer
from urllib.parse import parse_qsl, urlencode, urlsplit

from tests import loopback_http
from tests.loopback_http import FaultInjection, LoopbackService

NOVA_MAX_LIMIT = 1000  # Nova's default [api] max_limit: the largest page it returns
NOVA_MAX_MICROVERSION = (2, 96)
CINDER_MAX_MICROVERSION = "3.71"
NAMESPACE = uuid.UUID("6ba7b811-9dad-11d1-80b4-00c04fd430c8")
FLAVORS = [("m1.small", 1, 2048, 20), ("m1.medium", 2, 4096, 40), ("m1.large", 4, 8192, 80)]
IMAGES = ["debian-12", "ubuntu-24.04"]
# (name, external, IPv4 range, IPv6 range): floating IPs come from "public".
NETWORKS = [("public", True, "198.18.0.0/15", "2001:db8::/64"),
            ("private", False, "10.0.0.0/8", "fd00::/64")]
SEED_GROUPS = ["web", "db", "cache"]
ERRORS = {400: "badRequest", 401: "error", 404: "itemNotFound", 406: "error", 409: "conflictingRequest"}
NO_VALID_HOST = "No valid host was found. There are not enough hosts available."
UNAUTHORIZED = (401, {"error": {"code": 401, "title": "Unauthorized",
                                "message": "The request you have made requires authentication."}})


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _uuid(*parts: object) -> str:
    """A UUID that is the same on every run for the same parts."""
    return str(uuid.uuid5(NAMESPACE, "/".join(map(str, parts))))


def _dotted(version: tuple[int, int]) -> str:
    return f"{version[0]}.{version[1]}"


def _filtered(items: list[dict], query: dict[str, str], keys: tuple[str, ...]) -> list[dict]:
    """The items equal to the query on each of ``keys`` the query names (Neutron's and Glance's filters)."""
    return [i for i in items if all(str(i.get(k)) == v for k, v in query.items() if k in keys)]


def _error(status: int, message: str) -> tuple[int, dict]:
    key = ERRORS.get(status, "computeFault")
    return status, {key: {"code": status, "message": message}}


@dataclass
class Fault(loopback_http.Fault):
    """A loopback_http Fault that, with ``status`` 0, stalls ``hang`` seconds instead."""

    hang: float = 0.0


@dataclass(frozen=True)
class LoggedRequest:
    method: str
    path: str
    query: str
    status: int


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: Message
    body: dict
    params: dict[str, str]  # the route's named groups


_ROUTES: list[tuple[str, re.Pattern, bool, Callable]] = []


def route(method: str, pattern: str, auth: bool = True):
    """Register a handler for ``method`` and a path pattern; ``{R}`` is the region."""
    regex = re.compile(pattern.replace("{R}", r"/(?P<region>[\w.-]+)") + "/?")

    def register(func):
        _ROUTES.append((method, regex, auth, func))
        return func
    return register


class Region:
    """The resources of one region of a simulated cloud."""

    def __init__(self, cloud: str, name: str, project_id: str, user_id: str):
        self.name = name
        self.azs = ["az1", "az2"]
        self.servers: dict[str, dict] = {}
        self.volumes: dict[str, dict] = {}
        self.flavors = [{"id": _uuid(cloud, name, "flavor", f), "name": f, "vcpus": cpu, "ram": ram,
                         "disk": disk, "swap": 0, "OS-FLV-EXT-DATA:ephemeral": 0, "rxtx_factor": 1.0,
                         "os-flavor-access:is_public": True, "OS-FLV-DISABLED:disabled": False,
                         "description": None, "extra_specs": {}}
                        for f, cpu, ram, disk in FLAVORS]
        self.images = [{"id": _uuid(cloud, name, "image", i), "name": i, "status": "active",
                        "visibility": "public", "container_format": "bare", "disk_format": "qcow2",
                        "min_disk": 0, "min_ram": 0, "size": 424411136, "virtual_size": 2147483648,
                        "protected": False, "os_hidden": False, "tags": [], "owner": project_id,
                        "checksum": None, "os_hash_algo": "sha512", "os_hash_value": None,
                        "created_at": "2025-01-01T00:00:00Z", "updated_at": "2025-01-01T00:00:00Z"}
                       for i in IMAGES]
        for image in self.images:
            image.update({"self": f"/v2/images/{image['id']}", "file": f"/v2/images/{image['id']}/file",
                          "schema": "/v2/schemas/image"})
        self.networks = [{"id": _uuid(cloud, name, "network", n), "name": n, "status": "ACTIVE",
                          "admin_state_up": True, "shared": external, "router:external": external,
                          "subnets": [_uuid(cloud, name, "subnet", n, 4), _uuid(cloud, name, "subnet", n, 6)],
                          "mtu": 1500, "port_security_enabled": True, "availability_zones": ["nova"],
                          "tenant_id": project_id, "project_id": project_id, "description": "",
                          "tags": [], "revision_number": 1, "created_at": "2025-01-01T00:00:00Z",
                          "updated_at": "2025-01-01T00:00:00Z"}
                         for n, external, _, _ in NETWORKS]
        self.subnets = [{"id": _uuid(cloud, name, "subnet", n, version), "name": f"{n}-v{version}",
                         "network_id": _uuid(cloud, name, "network", n), "ip_version": version, "cidr": cidr,
                         "gateway_ip": str(next(ipaddress.ip_network(cidr).hosts())), "enable_dhcp": True,
                         "ipv6_address_mode": "slaac" if version == 6 else None,
                         "ipv6_ra_mode": "slaac" if version == 6 else None, "dns_nameservers": [],
                         "host_routes": [], "allocation_pools": [], "tenant_id": project_id,
                         "project_id": project_id, "subnetpool_id": None, "tags": [], "description": "",
                         "service_types": [], "segment_id": None, "revision_number": 1,
                         "created_at": "2025-01-01T00:00:00Z", "updated_at": "2025-01-01T00:00:00Z"}
                        for n, _, v4, v6 in NETWORKS for version, cidr in ((4, v4), (6, v6))]
        self.keypairs = [{"name": "admin", "type": "ssh", "user_id": user_id,
                          "fingerprint": "3c:b6:8e:4b:4c:4d:53:d4:3a:d3:76:c6:b0:43:52:1a",
                          "public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeFakeFakeFake admin@fake"}]
        self._pools = {n: (ipaddress.ip_network(v4), ipaddress.ip_network(v6), [0])
                       for n, _, v4, v6 in NETWORKS}

    def allocate(self, network: str, floating: bool = False) -> list[dict]:
        """The next addresses on ``network``: a floating IPv4 address, or fixed IPv4 and IPv6."""
        v4, v6, counter = self._pools[network]
        counter[0] += 1
        n = counter[0] + 9
        mac = f"fa:16:3e:{n >> 16 & 255:02x}:{n >> 8 & 255:02x}:{n & 255:02x}"
        kind = "floating" if floating else "fixed"
        ips = [v4[n]] if floating else [v4[n], v6[n]]
        return [{"version": ip.version, "addr": str(ip), "OS-EXT-IPS:type": kind,
                 "OS-EXT-IPS-MAC:mac_addr": mac} for ip in ips]

    def find(self, kind: str, key: str, value: str) -> dict | None:
        return next((item for item in getattr(self, kind) if item[key] == value), None)


class FakeCloud(FaultInjection, LoopbackService):
    """One simulated cloud: an HTTP server on 127.0.0.1 and its regions' state.

    Use as a context manager (``with FakeCloud("alpha", servers=10) as cloud:``)
    or call ``start()`` and ``stop()``. ``servers`` seeds that many ACTIVE
    servers in each region. Created servers and volumes stay BUILD/creating
    for ``build_polls`` GETs and at least ``build_seconds``.
    """

    def __init__(self, name: str = "fake", regions: tuple[str, ...] = ("RegionOne",), servers: int = 0,
                 latency: float = 0.0, page_size: int = NOVA_MAX_LIMIT, build_polls: int = 1,
                 build_seconds: float = 0.0, port: int = 0, username: str = "demo",
                 password: str = "secret", project_name: str = "demo"):
        self.name, self.latency, self.page_size, self.port = name, latency, page_size, port
        self.build_polls, self.build_seconds = build_polls, build_seconds
        self.username, self.password, self.project_name = username, password, project_name
        self.project_id = _uuid(name, "project").replace("-", "")
        self.user_id = _uuid(name, "user").replace("-", "")
        self.regions = {r: Region(name, r, self.project_id, self.user_id) for r in regions}
        self.error_on_create: set[str] = set()  # server names that go to ERROR when launched
        self.requests: list[LoggedRequest] = []
        FaultInjection.__init__(self)
        self.url = ""
        self._tokens: set[str] = set()
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        for region in regions:
            self.add_servers(servers, region)

    # -- lifecycle ---------------------------------------------------------

    @property
    def thread_name(self) -> str:
        return f"fake-{self.name}"

    def stop(self) -> None:
        self._stopping.set()  # ends hangs and latency waits
        super().stop()

    def clouds_yaml_entry(self, **extra) -> dict:
        """This cloud's entry for the ``clouds`` mapping of a clouds.yaml."""
        regions = list(self.regions)
        entry = {"auth": {"auth_url": f"{self.url}/identity", "username": self.username,
                          "password": self.password, "project_name": self.project_name,
                          "user_domain_name": "Default", "project_domain_name": "Default"},
                 "identity_api_version": 3, "interface": "public"}
        entry.update({"region_name": regions[0]} if len(regions) == 1 else {"regions": regions})
        entry.update(extra)
        return entry

    # -- seeding and injection ---------------------------------------------

    def add_servers(self, count: int, region: str | None = None, prefix: str | None = None,
                    metadata: dict | None = None) -> list[dict]:
        """Add ``count`` ACTIVE servers named ``{prefix}{n:05d}`` (default prefix
        ``{cloud}-{region}-``). Their metadata is ``group`` (web, db or cache)
        updated with ``metadata``; nine in ten have a floating IP."""
        reg = self.regions[region or next(iter(self.regions))]
        prefix = f"{self.name}-{reg.name.lower()}-" if prefix is None else prefix
        added = []
        with self._lock:
            for _ in range(count):
                n = len(reg.servers)
                server = self._new_server(
                    reg, name=f"{prefix}{n:05d}", server_id=_uuid(self.name, reg.name, n),
                    flavor=reg.flavors[n % len(reg.flavors)], image=reg.images[n % len(reg.images)],
                    key_name="admin", az=reg.azs[n % len(reg.azs)],
                    metadata={"group": SEED_GROUPS[n % len(SEED_GROUPS)], **(metadata or {})})
                reg.servers[server["id"]] = server
                self._activate(reg, server, ["private"], floating=n % 10 != 0)
                added.append(server)
        return added

    fault_class = Fault

    def hang(self, path: str, seconds: float, times: int | None = 1, method: str | None = None) -> None:
        """Stall the next ``times`` requests whose path contains ``path`` for ``seconds`` before answering."""
        self.fail(path, 0, times, method, hang=seconds)

    def count(self, path: str = "", method: str | None = None) -> int:
        """How many requests were answered whose path contains ``path``."""
        with self._lock:
            return sum(1 for r in self.requests if path in r.path and method in (None, r.method))

    # -- request handling --------------------------------------------------

    def respond(self, method: str, target: str, headers: Message, raw: bytes) -> tuple[int, bytes, dict]:
        """handle() with its JSON body encoded, for tests/loopback_http."""
        status, body, extra = self.handle(method, target, headers, raw)
        if body is None:
            return status, b"", extra
        return status, json.dumps(body).encode(), {**extra, "Content-Type": "application/json"}

    def handle(self, method: str, target: str, headers: Message, raw: bytes) -> tuple[int, dict | None, dict]:
        """Answer one request: (status, JSON body or None, extra headers)."""
        url = urlsplit(target)
        path = url.path.rstrip("/") or "/"
        if self.latency:
            self._stopping.wait(self.latency)
        fault = self.take_fault(method, path)
        if fault and fault.hang:
            self._stopping.wait(fault.hang)
        if fault and fault.status:
            status, body = _error(fault.status, f"Injected fault: HTTP {fault.status} on {path}")
            extra = {}
        else:
            try:
                status, body, extra = self._route(method, path, dict(parse_qsl(url.query)), headers, raw)
            except Exception as exc:  # a request the simulation does not expect: answer like a real API
                status, body, extra = (*_error(500, f"Unexpected request: {exc!r}"), {})
        with self._lock:
            self.requests.append(LoggedRequest(method, path, url.query, status))
        return status, body, extra

    def _route(self, method, path, query, headers, raw) -> tuple[int, dict | None, dict]:
        for verb, regex, auth, func in _ROUTES:
            match = regex.fullmatch(path) if verb == method else None
            if not match:
                continue
            if auth and headers.get("X-Auth-Token") not in self._tokens:
                return (*UNAUTHORIZED, {})
            try:
                body = json.loads(raw) if raw else {}
            except ValueError:
                return (*_error(400, "Malformed request body"), {})
            req = Request(method, path, query, headers, body, match.groupdict())
            extra: dict[str, str] = {}
            if "/compute/" in path:
                version = self._compute_microversion(headers)
                if version > NOVA_MAX_MICROVERSION:
                    return (*_error(406, f"Version {_dotted(version)} is not supported by the API."), {})
                req.params["microversion"] = version
                extra = {"OpenStack-API-Version": f"compute {_dotted(version)}",
                         "X-OpenStack-Nova-API-Version": _dotted(version),
                         "Vary": "OpenStack-API-Version, X-OpenStack-Nova-API-Version"}
            with self._lock:
                if "region" in req.params:
                    region = self.regions.get(req.params["region"])
                    if region is None:
                        return (*_error(404, f"No region {req.params['region']}"), {})
                    result = func(self, req, region)
                else:
                    result = func(self, req)
            status, body, *more = result
            return status, body, {**extra, **(more[0] if more else {})}
        return (*_error(404, f"The resource could not be found: {method} {path}"), {})

    @staticmethod
    def _compute_microversion(headers: Message) -> tuple[int, int]:
        value = headers.get("OpenStack-API-Version", "").removeprefix("compute ").strip() \
            or headers.get("X-OpenStack-Nova-API-Version", "2.1")
        if value == "latest":
            return NOVA_MAX_MICROVERSION
        major, minor = value.split(".")
        return int(major), int(minor)

    # -- Keystone ----------------------------------------------------------

    def _identity_version(self) -> dict:
        return {"id": "v3.14", "status": "stable", "updated": "2020-04-07T00:00:00Z",
                "links": [{"rel": "self", "href": f"{self.url}/identity/v3/"}],
                "media-types": [{"base": "application/json",
                                 "type": "application/vnd.openstack.identity-v3+json"}]}

    @route("GET", "/identity", auth=False)
    def _identity_versions(self, req):
        return 300, {"versions": {"values": [self._identity_version()]}}

    @route("GET", "/identity/v3", auth=False)
    def _identity_v3(self, req):
        return 200, {"version": self._identity_version()}

    @route("POST", "/identity/v3/auth/tokens", auth=False)
    def _issue_token(self, req):
        identity = req.body.get("auth", {}).get("identity", {})
        user = identity.get("password", {}).get("user", {})
        scope = req.body.get("auth", {}).get("scope", {}).get("project", {})
        by_password = user.get("name") == self.username and user.get("password") == self.password
        by_token = identity.get("token", {}).get("id") in self._tokens
        if not (by_password or by_token) or scope.get("name", self.project_name) != self.project_name \
                or scope.get("id", self.project_id) != self.project_id:
            return UNAUTHORIZED
        token = secrets.token_hex(16)
        self._tokens.add(token)
        domain = {"id": "default", "name": "Default"}
        now = datetime.now(UTC)
        body = {"token": {
            "methods": identity.get("methods", ["password"]), "audit_ids": [secrets.token_hex(8)],
            "user": {"id": self.user_id, "name": self.username, "domain": domain,
                     "password_expires_at": None},
            "project": {"id": self.project_id, "name": self.project_name, "domain": domain},
            "roles": [{"id": _uuid("role", "member"), "name": "member"}], "is_domain": False,
            "catalog": self._catalog(),
            "issued_at": now.strftime("%Y-%m-%dT%H:%M:%S.000000Z"),
            "expires_at": (now + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S.000000Z")}}
        return 201, body, {"X-Subject-Token": token}

    def _catalog(self) -> list[dict]:
        services = [("identity", "keystone", "{base}/identity"),
                    ("compute", "nova", "{base}/{region}/compute/v2.1"),
                    ("network", "neutron", "{base}/{region}/network"),
                    ("image", "glance", "{base}/{region}/image"),
                    ("volumev3", "cinderv3", "{base}/{region}/volume/v3/{project}"),
                    ("block-storage", "cinder", "{base}/{region}/volume/v3/{project}")]
        return [{"type": kind, "name": name, "id": _uuid(self.name, kind),
                 "endpoints": [{"id": _uuid(self.name, kind, r), "interface": "public", "region": r,
                                "region_id": r,
                                "url": url.format(base=self.url, region=r, project=self.project_id)}
                               for r in self.regions]}
                for kind, name, url in services]

    # -- Nova --------------------------------------------------------------

    def _compute_version(self, region) -> dict:
        return {"id": "v2.1", "status": "CURRENT", "version": _dotted(NOVA_MAX_MICROVERSION),
                "min_version": "2.1", "updated": "2013-07-23T11:33:21Z",
                "links": [{"rel": "self", "href": f"{self.url}/{region.name}/compute/v2.1/"}],
                "media-types": [{"base": "application/json",
                                 "type": "application/vnd.openstack.compute+json;version=2.1"}]}

    @route("GET", "{R}/compute", auth=False)
    def _compute_versions(self, req, region):
        return 200, {"versions": [self._compute_version(region)]}

    @route("GET", r"{R}/compute/v2\.1", auth=False)
    def _compute_v21(self, req, region):
        return 200, {"version": self._compute_version(region)}

    def _new_server(self, region, name, server_id, flavor, image, key_name, az, metadata) -> dict:
        now = _now()
        link = f"{self.url}/{region.name}/compute/v2.1/servers/{server_id}"
        # A server booted from a volume has no image: Nova gives "".
        image_ref = {"id": image["id"], "links": [{"rel": "bookmark", "href": image["self"]}]} \
            if image else ""
        return {
            "id": server_id, "name": name, "status": "BUILD", "tenant_id": self.project_id,
            "user_id": self.user_id, "metadata": metadata, "hostId": "", "created": now, "updated": now,
            "image": image_ref,
            "flavor": {"original_name": flavor["name"], "vcpus": flavor["vcpus"], "ram": flavor["ram"],
                       "disk": flavor["disk"], "ephemeral": 0, "swap": 0, "extra_specs": {}},
            "addresses": {}, "accessIPv4": "", "accessIPv6": "", "key_name": key_name,
            "links": [{"rel": "self", "href": link}, {"rel": "bookmark", "href": link}],
            "OS-DCF:diskConfig": "MANUAL", "OS-EXT-AZ:availability_zone": az, "config_drive": "",
            "progress": 0, "OS-EXT-STS:task_state": "scheduling", "OS-EXT-STS:vm_state": "building",
            "OS-EXT-STS:power_state": 0, "OS-SRV-USG:launched_at": None, "OS-SRV-USG:terminated_at": None,
            "security_groups": [{"name": "default"}], "os-extended-volumes:volumes_attached": [],
            "locked": False, "locked_reason": None, "description": None, "tags": [],
            "trusted_image_certificates": None, "server_groups": [],
            "_flavor_id": flavor["id"], "_polls": 0, "_created": datetime.now(UTC), "_networks": [],
        }

    def _activate(self, region, server, networks, floating=False) -> None:
        """BUILD -> ACTIVE with addresses, or ERROR if the name is in ``error_on_create``."""
        if server["name"] in self.error_on_create:
            server.update({"status": "ERROR", "OS-EXT-STS:vm_state": "error", "OS-EXT-STS:task_state": None,
                           "fault": {"code": 500, "created": _now(), "message": NO_VALID_HOST}})
            return
        addresses = {net: region.allocate(net) for net in networks}
        if floating:
            addresses[networks[0]] += region.allocate("public", floating=True)
        server.update({"status": "ACTIVE", "OS-EXT-STS:vm_state": "active", "OS-EXT-STS:task_state": None,
                       "OS-EXT-STS:power_state": 1, "OS-SRV-USG:launched_at": _now(), "addresses": addresses,
                       "hostId": _uuid(server["id"], "host").replace("-", ""), "progress": 100})

    def _poll(self, region, server) -> None:
        server["_polls"] += 1
        elapsed = (datetime.now(UTC) - server["_created"]).total_seconds()
        if server["status"] == "BUILD" and server["_polls"] > self.build_polls \
                and elapsed >= self.build_seconds:
            self._activate(region, server, server["_networks"])

    def _server_view(self, req, server, detail=True) -> dict:
        if not detail:
            return {"id": server["id"], "name": server["name"], "links": server["links"]}
        view = {k: v for k, v in server.items() if not k.startswith("_")}
        if req.params["microversion"] < (2, 47):
            view["flavor"] = {"id": server["_flavor_id"], "links": []}
        return view

    @route("GET", r"{R}/compute/v2\.1/servers(?P<detail>/detail)?")
    def _list_servers(self, req, region):
        servers = list(region.servers.values())
        if "name" in req.query:
            name = re.compile(req.query["name"])
            servers = [s for s in servers if name.search(s["name"])]
        if "status" in req.query:
            servers = [s for s in servers if s["status"] == req.query["status"].upper()]
        limit = min(int(req.query.get("limit", self.page_size)), self.page_size)
        start = 0
        if "marker" in req.query:
            ids = [s["id"] for s in servers]
            if req.query["marker"] not in ids:
                return _error(400, f"marker [{req.query['marker']}] not found")
            start = ids.index(req.query["marker"]) + 1
        page = servers[start:start + limit]
        for server in page:
            if server["status"] == "BUILD":
                self._poll(region, server)
        body = {"servers": [self._server_view(req, s, bool(req.params["detail"])) for s in page]}
        if page and len(page) == limit:  # like Nova: a full page links to the next one
            query = urlencode({**req.query, "marker": page[-1]["id"]})
            body["servers_links"] = [{"rel": "next", "href": f"{self.url}{req.path}?{query}"}]
        return 200, body

    @route("GET", r"{R}/compute/v2\.1/servers/(?P<id>[\w-]+)")
    def _get_server(self, req, region):
        server = region.servers.get(req.params["id"])
        if server is None:
            return _error(404, f"Instance {req.params['id']} could not be found.")
        self._poll(region, server)
        return 200, {"server": self._server_view(req, server)}

    @route("POST", r"{R}/compute/v2\.1/servers")
    def _create_server(self, req, region):
        spec = req.body.get("server", {})
        flavor = region.find("flavors", "id", spec.get("flavorRef", ""))
        image = region.find("images", "id", spec.get("imageRef", ""))
        boot_volume = any(str(b.get("boot_index")) == "0" for b in spec.get("block_device_mapping_v2", []))
        requested = spec.get("networks", "auto")
        if requested in ("auto", None):
            names = ["public"]
        elif requested == "none":
            names = []
        else:  # [{"uuid": network id}, ...]; ports and fixed_ip requests are not simulated
            names = [(region.find("networks", "id", n.get("uuid", "")) or {}).get("name") for n in requested]
        if not spec.get("name"):
            return _error(400, "Invalid input for field/attribute name.")
        if flavor is None:
            return _error(400, f"Flavor {spec.get('flavorRef')} could not be found.")
        if image is None and not boot_volume:
            return _error(400, f"Image {spec.get('imageRef')} could not be found.")
        if None in names:
            return _error(400, "Network could not be found.")
        if spec.get("key_name") and not region.find("keypairs", "name", spec["key_name"]):
            return _error(400, "Invalid key_name provided.")
        az = spec.get("availability_zone") or region.azs[0]
        server = self._new_server(region, spec["name"], str(uuid.uuid4()), flavor, image,
                                  spec.get("key_name"), az, spec.get("metadata", {}))
        server["_networks"] = names
        region.servers[server["id"]] = server
        body = {"server": {"id": server["id"], "links": server["links"], "OS-DCF:diskConfig": "MANUAL",
                           "security_groups": server["security_groups"],
                           "adminPass": secrets.token_urlsafe(9)}}
        return 202, body, {"Location": server["links"][0]["href"]}

    @route("DELETE", r"{R}/compute/v2\.1/servers/(?P<id>[\w-]+)")
    def _delete_server(self, req, region):
        server = region.servers.pop(req.params["id"], None)
        if server is None:
            return _error(404, f"Instance {req.params['id']} could not be found.")
        for volume in region.volumes.values():
            if any(a["server_id"] == server["id"] for a in volume["attachments"]):
                volume.update(status="available", attachments=[])
        return 204, None

    def _flavor_view(self, flavor, detail=True) -> dict:
        if not detail:
            return {"id": flavor["id"], "name": flavor["name"], "description": None, "links": []}
        return {**flavor, "links": []}

    @route("GET", r"{R}/compute/v2\.1/flavors(?P<detail>/detail)?")
    def _list_flavors(self, req, region):
        return 200, {"flavors": [self._flavor_view(f, bool(req.params["detail"])) for f in region.flavors]}

    @route("GET", r"{R}/compute/v2\.1/flavors/(?P<id>[\w.-]+)")
    def _get_flavor(self, req, region):
        flavor = region.find("flavors", "id", req.params["id"])
        if flavor is None:
            return _error(404, f"Flavor {req.params['id']} could not be found.")
        return 200, {"flavor": self._flavor_view(flavor)}

    @route("GET", r"{R}/compute/v2\.1/flavors/(?P<id>[\w.-]+)/os-extra_specs")
    def _flavor_extra_specs(self, req, region):
        flavor = region.find("flavors", "id", req.params["id"])
        if flavor is None:
            return _error(404, f"Flavor {req.params['id']} could not be found.")
        return 200, {"extra_specs": flavor["extra_specs"]}

    @route("GET", r"{R}/compute/v2\.1/os-keypairs")
    def _list_keypairs(self, req, region):
        fields = ("name", "type", "fingerprint", "public_key")
        return 200, {"keypairs": [{"keypair": {k: kp[k] for k in fields}} for kp in region.keypairs]}

    @route("GET", r"{R}/compute/v2\.1/os-keypairs/(?P<name>[^/]+)")
    def _get_keypair(self, req, region):
        keypair = region.find("keypairs", "name", req.params["name"])
        if keypair is None:
            return _error(404, f"Keypair {req.params['name']} not found for user {self.user_id}")
        return 200, {"keypair": {**keypair, "id": 1, "deleted": False, "updated_at": None, "deleted_at": None,
                                 "created_at": "2025-01-01T00:00:00.000000"}}

    def _attachment_view(self, server_id, volume_id, attachment) -> dict:
        return {"id": volume_id, "volumeId": volume_id, "serverId": server_id, "device": attachment["device"],
                "tag": None, "delete_on_termination": False, "attachment_id": attachment["id"],
                "bdm_uuid": _uuid(attachment["id"], "bdm")}

    @route("GET", r"{R}/compute/v2\.1/servers/(?P<id>[\w-]+)/os-volume_attachments")
    def _list_attachments(self, req, region):
        if req.params["id"] not in region.servers:
            return _error(404, f"Instance {req.params['id']} could not be found.")
        return 200, {"volumeAttachments": [self._attachment_view(req.params["id"], v["id"], a)
                                           for v in region.volumes.values() for a in v["attachments"]
                                           if a["server_id"] == req.params["id"]]}

    @route("GET", r"{R}/compute/v2\.1/servers/(?P<id>[\w-]+)/os-volume_attachments/(?P<volume>[\w-]+)")
    def _get_attachment(self, req, region):
        volume = region.volumes.get(req.params["volume"], {})
        attachment = next((a for a in volume.get("attachments", [])
                           if a["server_id"] == req.params["id"]), None)
        if attachment is None:
            return _error(404, f"Volume {req.params['volume']} is not attached to {req.params['id']}.")
        return 200, {"volumeAttachment": self._attachment_view(req.params["id"], volume["id"], attachment)}

    @route("POST", r"{R}/compute/v2\.1/servers/(?P<id>[\w-]+)/os-volume_attachments")
    def _attach_volume(self, req, region):
        server = region.servers.get(req.params["id"])
        spec = req.body.get("volumeAttachment", {})
        volume = region.volumes.get(spec.get("volumeId", ""))
        if server is None:
            return _error(404, f"Instance {req.params['id']} could not be found.")
        if server["status"] not in ("ACTIVE", "SHUTOFF"):
            return _error(409, f"Cannot 'attach_volume' instance {server['id']} while it is in "
                               f"vm_state {server['OS-EXT-STS:vm_state']}")
        if volume is None:
            return _error(404, f"Volume {spec.get('volumeId')} could not be found.")
        if volume["status"] != "available":
            return _error(400, f"Invalid volume: volume {volume['id']} status must be 'available', "
                               f"not '{volume['status']}'")
        used = len(server["os-extended-volumes:volumes_attached"])
        attachment_id = str(uuid.uuid4())
        attachment = {"id": attachment_id, "attachment_id": attachment_id, "volume_id": volume["id"],
                      "server_id": server["id"], "host_name": None, "attached_at": _now(),
                      "device": spec.get("device") or f"/dev/vd{chr(ord('b') + used)}"}
        volume.update(status="in-use", attachments=[attachment])
        attached = server["os-extended-volumes:volumes_attached"]  # replaced, not changed: views share it
        server["os-extended-volumes:volumes_attached"] = [*attached, {"id": volume["id"],
                                                                      "delete_on_termination": False}]
        return 200, {"volumeAttachment": self._attachment_view(server["id"], volume["id"], attachment)}

    @route("DELETE", r"{R}/compute/v2\.1/servers/(?P<id>[\w-]+)/os-volume_attachments/(?P<volume>[\w-]+)")
    def _detach_volume(self, req, region):
        server = region.servers.get(req.params["id"])
        volume = region.volumes.get(req.params["volume"])
        if server is None or volume is None or not any(a["server_id"] == server["id"]
                                                       for a in volume["attachments"]):
            return _error(404, f"Volume {req.params['volume']} is not attached to {req.params['id']}.")
        volume.update(status="available", attachments=[])
        server["os-extended-volumes:volumes_attached"] = [
            v for v in server["os-extended-volumes:volumes_attached"] if v["id"] != volume["id"]]
        return 202, None

    # -- Neutron -----------------------------------------------------------

    @route("GET", "{R}/network", auth=False)
    def _network_versions(self, req, region):
        href = f"{self.url}/{region.name}/network/v2.0/"
        return 200, {"versions": [{"id": "v2.0", "status": "CURRENT",
                                   "links": [{"rel": "self", "href": href}]}]}

    @route("GET", r"{R}/network/v2\.0/networks")
    def _list_networks(self, req, region):
        return 200, {"networks": _filtered(region.networks, req.query, ("id", "name", "status"))}

    @route("GET", r"{R}/network/v2\.0/networks/(?P<id>[\w-]+)")
    def _get_network(self, req, region):
        network = region.find("networks", "id", req.params["id"])
        if network is None:
            return _error(404, f"Network {req.params['id']} could not be found.")
        return 200, {"network": network}

    @route("GET", r"{R}/network/v2\.0/subnets")
    def _list_subnets(self, req, region):
        return 200, {"subnets": _filtered(region.subnets, req.query, ("id", "name", "network_id"))}

    @route("GET", r"{R}/network/v2\.0/ports")
    def _list_ports(self, req, region):
        """Ports are not stored: one per server and network, made from the server's fixed addresses."""
        ports = []
        for server in region.servers.values():
            for net_name, addresses in server["addresses"].items():
                network = region.find("networks", "name", net_name)
                fixed = [a for a in addresses if a["OS-EXT-IPS:type"] == "fixed"]
                subnet = {(s["network_id"], s["ip_version"]): s["id"] for s in region.subnets}
                ports.append({"id": _uuid(server["id"], net_name), "name": "", "network_id": network["id"],
                              "device_id": server["id"], "status": "ACTIVE", "admin_state_up": True,
                              "device_owner": f"compute:{server['OS-EXT-AZ:availability_zone']}",
                              "mac_address": fixed[0]["OS-EXT-IPS-MAC:mac_addr"],
                              "fixed_ips": [{"subnet_id": subnet[network["id"], a["version"]],
                                             "ip_address": a["addr"]} for a in fixed],
                              "project_id": self.project_id, "tenant_id": self.project_id,
                              "security_groups": [], "tags": [], "description": ""})
        return 200, {"ports": _filtered(ports, req.query, ("id", "device_id", "network_id"))}

    @route("GET", r"{R}/network/v2\.0/floatingips")
    def _list_floating_ips(self, req, region):
        """Floating IPs are not stored either: made from the servers' floating addresses."""
        public = region.find("networks", "name", "public")["id"]
        ips = [{"id": _uuid(a["addr"]), "floating_ip_address": a["addr"], "floating_network_id": public,
                "fixed_ip_address": addresses[0]["addr"], "port_id": _uuid(server["id"], net_name),
                "router_id": _uuid(region.name, "router"), "status": "ACTIVE", "project_id": self.project_id,
                "tenant_id": self.project_id, "description": "", "tags": []}
               for server in region.servers.values() for net_name, addresses in server["addresses"].items()
               for a in addresses if a["OS-EXT-IPS:type"] == "floating"]
        return 200, {"floatingips": _filtered(ips, req.query, ("id", "port_id", "floating_ip_address"))}

    # -- Glance ------------------------------------------------------------

    @route("GET", "{R}/image", auth=False)
    def _image_versions(self, req, region):
        href = f"{self.url}/{region.name}/image/v2/"
        return 300, {"versions": [{"id": "v2.16", "status": "CURRENT",
                                   "links": [{"rel": "self", "href": href}]}]}

    @route("GET", "{R}/image/v2/images")
    def _list_images(self, req, region):
        images = _filtered(region.images, req.query, ("id", "name", "status"))
        return 200, {"images": images, "first": "/v2/images", "schema": "/v2/schemas/images"}

    @route("GET", r"{R}/image/v2/images/(?P<id>[\w.-]+)")
    def _get_image(self, req, region):
        image = region.find("images", "id", req.params["id"])
        if image is None:
            return _error(404, f"No image found with ID {req.params['id']}")
        return 200, image

    # -- Cinder ------------------------------------------------------------

    @route("GET", "{R}/volume", auth=False)
    def _volume_versions(self, req, region):
        return 300, {"versions": [self._volume_version(region)]}

    @route("GET", r"{R}/volume/v3(/\w+)?", auth=False)
    def _volume_v3(self, req, region):
        return 200, {"version": self._volume_version(region)}

    def _volume_version(self, region) -> dict:
        return {"id": "v3.0", "status": "CURRENT", "version": CINDER_MAX_MICROVERSION, "min_version": "3.0",
                "updated": "2023-08-31T00:00:00Z",
                "links": [{"rel": "self", "href": f"{self.url}/{region.name}/volume/v3/"}]}

    def _volume_view(self, region, volume) -> dict:
        volume["_polls"] += 1
        if volume["status"] == "creating" and volume["_polls"] > self.build_polls:
            volume["status"] = "available"
        return {k: v for k, v in volume.items() if not k.startswith("_")}

    @route("GET", r"{R}/volume/v3/\w+/volumes(/detail)?")
    def _list_volumes(self, req, region):
        return 200, {"volumes": [self._volume_view(region, v) for v in region.volumes.values()]}

    @route("POST", r"{R}/volume/v3/\w+/volumes")
    def _create_volume(self, req, region):
        spec = req.body.get("volume", {})
        if not isinstance(spec.get("size"), int) or spec["size"] < 1:
            return _error(400, "Invalid input received: size must be an integer greater than 0")
        volume_id = str(uuid.uuid4())
        volume = {"id": volume_id, "name": spec.get("name"), "description": spec.get("description"),
                  "size": spec["size"], "status": "creating", "attachments": [],
                  "availability_zone": spec.get("availability_zone") or "nova", "bootable": "false",
                  "volume_type": spec.get("volume_type") or "__DEFAULT__",
                  "metadata": spec.get("metadata", {}),
                  "multiattach": False, "encrypted": False, "snapshot_id": None, "source_volid": None,
                  "user_id": self.user_id, "replication_status": None, "consistencygroup_id": None,
                  "created_at": _now().rstrip("Z") + ".000000", "updated_at": None,
                  "links": [{"rel": "self", "href": f"{self.url}{req.path}/{volume_id}"}], "_polls": 0}
        region.volumes[volume_id] = volume
        return 202, {"volume": self._volume_view(region, volume)}

    @route("GET", r"{R}/volume/v3/\w+/volumes/(?P<id>[\w-]+)")
    def _get_volume(self, req, region):
        volume = region.volumes.get(req.params["id"])
        if volume is None:
            return _error(404, f"Volume {req.params['id']} could not be found.")
        return 200, {"volume": self._volume_view(region, volume)}

    @route("DELETE", r"{R}/volume/v3/\w+/volumes/(?P<id>[\w-]+)")
    def _delete_volume(self, req, region):
        volume = region.volumes.get(req.params["id"])
        if volume is None:
            return _error(404, f"Volume {req.params['id']} could not be found.")
        if volume["status"] not in ("available", "error"):
            return _error(400, "Invalid volume: Volume status must be available or error or error_restoring "
                               "or error_extending or error_managing and must not be migrating, attached, "
                               "belong to a group, have snapshots, awaiting a transfer, or be disassociated "
                               "from snapshots after volume transfer.")
        del region.volumes[volume["id"]]
        return 202, None


def clouds_yaml(*clouds: FakeCloud, **extra) -> dict:
    """A clouds.yaml document (as a dict) naming every cloud given."""
    return {"clouds": {cloud.name: cloud.clouds_yaml_entry(**extra) for cloud in clouds}}
