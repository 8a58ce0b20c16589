"""Filters that turn the OpenStack clouds of the inventory into zuul-launcher configuration.

Zuul 14's launcher reads its node providers from two places: a ``[connection
NAME]`` section of zuul.conf per cloud (``driver=openstack``, ``cloud=`` a
clouds.yaml cloud name), and ``image``, ``flavor``, ``label``, ``section`` and
``provider`` objects in a config project. These filters build both from one
inventory variable, ``zuul_launcher_openstack``, a list of providers::

    - name: alpha                   # provider and section name
      cloud: alpha                  # the cloud's name in clouds.yaml
      region: RegionOne             # optional (default: the cloud's region_name)
      connection: openstack-alpha   # optional (default openstack-<name>)
      rate: 2                       # optional: API requests/second of the connection
      launch_timeout: 600           # optional provider settings (seconds)
      launch_attempts: 3
      max_servers: 20               # optional resource limits: instances,
      max_cores: 80                 #   cores,
      max_ram: 163840               #   RAM in MiB
      floating_ip_cleanup: false    # optional (Zuul: false)
      port_cleanup_interval: 600    # optional (Zuul: 600; 0 turns it off)
      boot_timeout: 300             # optional label defaults: boot-timeout,
      key_name: zuul                #   key-name,
      networks: [private]           #   networks,
      security_groups: [default]    #   security-groups,
      floating_ip: true             #   auto-floating-ip,
      availability_zone: nova       #   az,
      host_key_checking: true       #   host-key-checking
      images:
        - name: debian-trixie       # Zuul image name (shared by every cloud that has it)
          image_id: 6c8a...         # required: Glance image ID (a UUID)
          username: zuul            # optional: username, python_path,
          python_path: /usr/bin/python3  # connection_type (ssh, winrm),
          connection_type: ssh      #   connection_port, config_drive,
          description: ...          #   description
      flavors:
        - name: small               # Zuul flavor name
          flavor_name: m1.small     # required: Nova flavor name or ID
          description: ...
      labels:
        - name: debian-trixie-small # Zuul label name (what nodesets ask for)
          image: debian-trixie      # required: an image of this provider
          flavor: small             # required: a flavor of this provider
          min_ready: 1              # optional: min_ready, max_ready_age,
          description: ...          #   description (all Zuul-wide),
          boot_timeout: 600         #   boot_timeout, boot_from_volume,
          boot_from_volume: true    #   volume_size (GB; required with
          volume_size: 40           #   boot_from_volume) (this provider only)

``devinfra_zuul_openstack(providers)`` returns the config objects, the list a
``zuul.d/*.yaml`` file of the config project holds (``- image: {...}`` ...):
one ``image``, ``flavor`` and ``label`` per name (these are Zuul-wide; a name
used by several providers must mean the same thing in each), then a
``section`` (connection, region, limits, label defaults, and the cloud's
images, flavors and labels) and a ``provider`` (``section: <name>``) per
entry. ``devinfra_zuul_openstack_connections(providers)`` returns the zuul.conf
connections, ``{name: {driver: openstack, cloud: ..., rate?: ...}}``.
``devinfra_zuul_clouds_yaml(clouds, providers)`` checks the clouds.yaml
``clouds:`` mapping against the providers and returns the clouds.yaml text.

A bad entry raises an error naming it (``zuul_launcher_openstack[0] (alpha)
labels[1] (debian-trixie-small)``) and the field. The fields' types are an Ansible
argument spec per entry (PROVIDER_SPEC, IMAGE_SPEC, FLAVOR_SPEC, LABEL_SPEC), checked by
ArgumentSpecValidator with a role spec's conversions (``"yes"`` is true, ``"private"`` is
``["private"]``); names, smallest values and references are checked after, with
plugins/module_utils/checks.py. Zuul 14.3.0 boots OpenStack cloud images by ID only
(``image-id``); names and filters are not supported.
"""

from __future__ import annotations

import copy
import re
import runpy
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import SimpleNamespace

import yaml
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

try:
    from ansible.errors import AnsibleFilterError
except ImportError:  # pragma: no cover - only without ansible installed
    AnsibleFilterError = ValueError  # type: ignore[misc,assignment]

VAR = "zuul_launcher_openstack"
CLOUDS_VAR = "zuul_launcher_clouds"


# plugins/module_utils/checks.py of this checkout, by its path: controller plugins cannot import
# a repository's module_utils.
checks = SimpleNamespace(**runpy.run_path(str(Path(__file__).parents[1] / "module_utils" / "checks.py")))



def _spec(**fields: str) -> dict:
    """An Ansible argument spec from ``field="type"`` (``!`` after the type: required;
    ``list:str``: a list of strings)."""
    spec = {}
    for field, kind in fields.items():
        required = kind.endswith("!")
        kind, _, elements = kind.rstrip("!").partition(":")
        spec[field] = {"type": kind, "required": required} | ({"elements": elements} if elements else {})
    return spec


# The fields of each entry and their types, checked by Ansible's ArgumentSpecValidator (the
# same types, and conversions, as a role's argument spec); what a type cannot say (a name, a
# smallest value, a UUID, an image of this provider) is checked after it, below.
PROVIDER_SPEC = _spec(
    name="str!", cloud="str!", region="str", connection="str", rate="raw", launch_timeout="int",
    launch_attempts="int", max_servers="int", max_cores="int", max_ram="int",
    floating_ip_cleanup="bool", port_cleanup_interval="int", boot_timeout="int", key_name="str",
    networks="list:str", security_groups="list:str", floating_ip="bool", availability_zone="str",
    host_key_checking="bool", images="list:raw", flavors="list:raw", labels="list:raw")
IMAGE_SPEC = _spec(name="str!", image_id="str!", description="str", username="str", python_path="str",
                   connection_type="str", connection_port="int", config_drive="bool")
FLAVOR_SPEC = _spec(name="str!", flavor_name="str!", description="str")
LABEL_SPEC = _spec(name="str!", image="str!", flavor="str!", description="str", min_ready="int",
                   max_ready_age="int", boot_timeout="int", boot_from_volume="bool", volume_size="int")
CONNECTION_TYPES = ("ssh", "winrm")
# The integer fields and their smallest value.
_INT_MIN = {"launch_timeout": 1, "launch_attempts": 1, "boot_timeout": 1, "max_servers": 0,
            "max_cores": 0, "max_ram": 0, "port_cleanup_interval": 0, "connection_port": 1,
            "volume_size": 1, "min_ready": 0, "max_ready_age": 0}


# -- value checks ------------------------------------------------------------

def _native(value: object, where: str) -> object:
    """A plain copy (dict, list, str, int, float, bool, None) of an Ansible value.

    Ansible 2.19 hands filters lazy containers and tagged strings; yaml.safe_dump
    refuses them and Ansible's own to_nice_yaml writes a vaulted string as its
    ``!vault`` ciphertext. The error never shows the value (it may be a secret).
    """
    if value is None:
        return None
    if isinstance(value, Mapping):
        return {_native(k, where): _native(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, Sequence):
        return [_native(v, f"{where}[{i}]") for i, v in enumerate(value)]
    raise AnsibleFilterError(f"{where}: a {type(value).__name__} is not a YAML value "
                             "(an undecryptable vault value?)")


def _mapping(entry: object, where: str, allowed: set[str]) -> Mapping:
    if not isinstance(entry, Mapping):
        raise AnsibleFilterError(f"{where}: expected a mapping, got {type(entry).__name__}")
    unknown = set(map(str, entry)) - allowed
    if unknown:
        hint = ""
        if unknown & {"image_name", "filters"} and "image_id" in allowed:
            hint = ("; Zuul 14's OpenStack driver boots cloud images by ID only: "
                    "set image_id to the Glance image ID")
        raise AnsibleFilterError(f"{where}: unknown key(s) {', '.join(sorted(unknown))} "
                                 f"(allowed: {', '.join(sorted(allowed))}){hint}")
    return entry


_TYPE_WORDS = {"str": "a string", "int": "an integer", "bool": "true or false", "list": "a list"}


def _typed(entry: object, where: str, spec: dict) -> dict:
    """The entry's fields, typed by ArgumentSpecValidator (absent ones None); the first
    problem raises an error naming the entry and the field."""
    given = {str(key): value for key, value in _mapping(entry, where, set(spec)).items()}
    result = ArgumentSpecValidator(spec).validate(given)
    for error in result.errors:
        text = str(error)
        if text.startswith("missing required arguments: "):
            missing = text.split(": ", 1)[1].split(",")[0].strip()
            raise AnsibleFilterError(f"{where}: missing {missing}")
        found = re.match(r"(?:argument|Elements value for option) '(\w+)'", text)
        if found and found[1] in spec:
            field = found[1]
            value = given[field]
            if spec[field]["type"] == "list":
                what = "a list of strings" if spec[field].get("elements") == "str" else "a list"
                raise AnsibleFilterError(f"{where}: {field} must be {what}, got {type(value).__name__}")
            words = _TYPE_WORDS.get(spec[field]["type"], spec[field]["type"])
            if field in _INT_MIN:
                words += f" >= {_INT_MIN[field]}"
            raise AnsibleFilterError(f"{where}: {field} must be {words}, got {value!r}")
        raise AnsibleFilterError(f"{where}: {text}")
    return result.validated_parameters


def _str(entry: Mapping, field: str, where: str) -> str | None:
    """A typed string field: None when absent; never empty."""
    value = entry.get(field)
    if value is None:
        return None
    if not value.strip():
        raise AnsibleFilterError(f"{where}: {field} must be a non-empty string, got {value!r}")
    return str.__str__(value)


def _name(entry: Mapping, field: str, where: str) -> str | None:
    value = _str(entry, field, where)
    if value is not None and not checks.name(value):
        raise AnsibleFilterError(f"{where}: {field} {value!r} is not a valid name "
                                 "(letters, digits, '.', '_', '-'; starting with a letter or digit)")
    return value


def _int(entry: Mapping, field: str, where: str) -> int | None:
    """A typed integer field: None when absent; at least its smallest value (_INT_MIN)."""
    value = entry.get(field)
    if value is None:
        return None
    low = _INT_MIN[field]
    if isinstance(value, bool) or value < low:
        raise AnsibleFilterError(f"{where}: {field} must be an integer >= {low}, got {value!r}")
    if field == "connection_port" and value > 65535:
        raise AnsibleFilterError(f"{where}: {field} {value} is outside 1-65535")
    return int(value)


def _bool(entry: Mapping, field: str, where: str) -> bool | None:
    value = entry.get(field)
    return None if value is None else bool(value)


def _strings(entry: Mapping, field: str, where: str) -> list[str] | None:
    """A typed list of strings: None when absent; no empty item."""
    items = entry.get(field)
    if items is None:
        return None
    for item in items:
        if not item.strip():
            raise AnsibleFilterError(f"{where}: {field} must be a list of names or IDs, got {item!r}")
    return [str.__str__(item) for item in items]


def _rate(entry: Mapping, where: str) -> int | float | None:
    value = entry.get("rate")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise AnsibleFilterError(f"{where}: rate must be a number > 0 (requests per second), got {value!r}")
    return int(value) if isinstance(value, int) else float(value)


def _put(target: dict, key: str, value: object) -> None:
    if value is not None:
        target[key] = value


# -- one provider ------------------------------------------------------------

def _image(entry: object, where: str) -> tuple[dict, dict]:
    """(the Zuul-wide image object, the section's image entry)."""
    entry = _typed(entry, where, IMAGE_SPEC)
    name = _name(entry, "name", where)
    image_id = _str(entry, "image_id", where)
    try:
        uuid.UUID(image_id)
    except ValueError:
        raise AnsibleFilterError(
            f"{where}: image_id {image_id!r} is not a Glance image ID (a UUID); Zuul 14's "
            "OpenStack driver boots cloud images by ID, not by name") from None
    connection_type = _str(entry, "connection_type", where)
    if connection_type is not None and connection_type not in CONNECTION_TYPES:
        raise AnsibleFilterError(f"{where}: connection_type {connection_type!r} is not one of "
                                 f"{', '.join(CONNECTION_TYPES)}")
    shared = {"name": name, "type": "cloud"}
    _put(shared, "description", _str(entry, "description", where))
    local = {"name": name, "image-id": image_id}
    _put(local, "username", _str(entry, "username", where))
    _put(local, "python-path", _str(entry, "python_path", where))
    _put(local, "connection-type", connection_type)
    _put(local, "connection-port", _int(entry, "connection_port", where))
    _put(local, "config-drive", _bool(entry, "config_drive", where))
    return shared, local


def _flavor(entry: object, where: str) -> tuple[dict, dict]:
    entry = _typed(entry, where, FLAVOR_SPEC)
    name = _name(entry, "name", where)
    shared = {"name": name}
    _put(shared, "description", _str(entry, "description", where))
    local = {"name": name, "flavor-name": _str(entry, "flavor_name", where)}
    return shared, local


def _label(entry: object, where: str, images: set[str], flavors: set[str]) -> tuple[dict, dict]:
    entry = _typed(entry, where, LABEL_SPEC)
    name = _name(entry, "name", where)
    image = _name(entry, "image", where)
    flavor = _name(entry, "flavor", where)
    if image not in images:
        raise AnsibleFilterError(f"{where}: image {image!r} is not one of this provider's images "
                                 f"({', '.join(sorted(images)) or 'none'})")
    if flavor not in flavors:
        raise AnsibleFilterError(f"{where}: flavor {flavor!r} is not one of this provider's flavors "
                                 f"({', '.join(sorted(flavors)) or 'none'})")
    shared = {"name": name, "image": image, "flavor": flavor}
    _put(shared, "description", _str(entry, "description", where))
    _put(shared, "min-ready", _int(entry, "min_ready", where))
    _put(shared, "max-ready-age", _int(entry, "max_ready_age", where))
    local = {"name": name}
    _put(local, "boot-timeout", _int(entry, "boot_timeout", where))
    _put(local, "boot-from-volume", _bool(entry, "boot_from_volume", where))
    _put(local, "volume-size", _int(entry, "volume_size", where))
    if local.get("boot-from-volume") and "volume-size" not in local:
        # Zuul 14.3.0 passes the label's volume size (None) on; Nova refuses "None".
        raise AnsibleFilterError(f"{where}: volume_size (GB) is required with boot_from_volume")
    return shared, local


def _objects(entries: list[tuple[tuple[dict, dict], str]], where: str, kind: str) -> list[tuple[dict, dict]]:
    """The (shared, local) pairs of ((shared, local), item's where) entries, names checked unique."""
    seen: set[str] = set()
    for (shared, _), item_where in entries:
        if shared["name"] in seen:
            raise AnsibleFilterError(f"{item_where}: {kind} {shared['name']} is listed twice "
                                     f"in {where}")
        seen.add(shared["name"])
    return [pair for pair, _ in entries]


def _provider(entry: object, where: str) -> dict:
    """One checked entry: its connection settings, section, and shared objects."""
    entry = _typed(entry, where, PROVIDER_SPEC)
    name = _name(entry, "name", where)
    cloud = _name(entry, "cloud", where)
    connection = _name(entry, "connection", where) or f"openstack-{name}"

    section: dict = {"name": name, "connection": connection}
    _put(section, "region", _str(entry, "region", where))
    _put(section, "launch-timeout", _int(entry, "launch_timeout", where))
    _put(section, "launch-attempts", _int(entry, "launch_attempts", where))
    limits: dict = {}
    _put(limits, "instances", _int(entry, "max_servers", where))
    _put(limits, "cores", _int(entry, "max_cores", where))
    _put(limits, "ram", _int(entry, "max_ram", where))
    if limits:
        section["resource-limits"] = limits
    _put(section, "floating-ip-cleanup", _bool(entry, "floating_ip_cleanup", where))
    _put(section, "port-cleanup-interval", _int(entry, "port_cleanup_interval", where))
    defaults: dict = {}
    _put(defaults, "boot-timeout", _int(entry, "boot_timeout", where))
    _put(defaults, "key-name", _str(entry, "key_name", where))
    _put(defaults, "networks", _strings(entry, "networks", where))
    _put(defaults, "security-groups", _strings(entry, "security_groups", where))
    _put(defaults, "auto-floating-ip", _bool(entry, "floating_ip", where))
    _put(defaults, "az", _str(entry, "availability_zone", where))
    _put(defaults, "host-key-checking", _bool(entry, "host_key_checking", where))
    if defaults:
        section["label-defaults"] = defaults

    def items(field: str) -> list[tuple[int, object, str]]:
        return [(i, e, f"{where} {checks.where(field, i, e)}")
                for i, e in enumerate(entry.get(field) or [])]

    images = _objects([(_image(e, w), w) for _, e, w in items("images")], where, "image")
    flavors = _objects([(_flavor(e, w), w) for _, e, w in items("flavors")], where, "flavor")
    image_names = {shared["name"] for shared, _ in images}
    flavor_names = {shared["name"] for shared, _ in flavors}
    labels = _objects([(_label(e, w, image_names, flavor_names), w) for _, e, w in items("labels")],
                      where, "label")
    if not labels:
        raise AnsibleFilterError(f"{where}: labels is empty; a provider needs at least one label")
    section["images"] = [local for _, local in images]
    section["flavors"] = [local for _, local in flavors]
    section["labels"] = [local for _, local in labels]
    return {
        "where": where, "name": name, "cloud": cloud, "region": section.get("region"),
        "connection": connection, "rate": _rate(entry, where), "section": section,
        "images": images, "flavors": flavors, "labels": labels,
    }


def _providers(providers: object) -> list[dict]:
    if providers is None:
        return []
    if not isinstance(providers, Sequence) or isinstance(providers, str):
        raise AnsibleFilterError(f"{VAR} must be a list of providers, got {type(providers).__name__}")
    result, names = [], {}
    for index, entry in enumerate(providers):
        where = checks.where(VAR, index, entry)
        provider = _provider(entry, where)
        if provider["name"] in names:
            raise AnsibleFilterError(f"{where}: name {provider['name']} is already used by "
                                     f"{names[provider['name']]}")
        names[provider["name"]] = where
        result.append(provider)
    return result


# -- filters -----------------------------------------------------------------

def _checked(providers: object) -> tuple[list[dict], dict[str, dict[str, dict]]]:
    """The checked providers and the Zuul-wide objects ({kind: {name: object}})."""
    checked = _providers(providers)
    shared: dict[str, dict[str, tuple[dict, str]]] = {"image": {}, "flavor": {}, "label": {}}
    for provider in checked:
        for kind, field in (("image", "images"), ("flavor", "flavors"), ("label", "labels")):
            for index, (obj, _) in enumerate(provider[field]):
                first = shared[kind].get(obj["name"])
                if first is None:
                    shared[kind][obj["name"]] = (obj, provider["where"])
                    continue
                for key in sorted(set(obj) | set(first[0])):
                    if obj.get(key) != first[0].get(key):
                        raise AnsibleFilterError(
                            f"{provider['where']} {field}[{index}] ({obj['name']}): "
                            f"{key.replace('-', '_')} {obj.get(key)!r} differs from "
                            f"{first[0].get(key)!r} in {first[1]}; a {kind} is Zuul-wide and must "
                            "be the same in every provider")
    return checked, {kind: {name: obj for name, (obj, _) in objs.items()} for kind, objs in shared.items()}


def zuul_openstack(providers: object) -> list[dict]:
    """The zuul.d objects (image, flavor, label, section, provider) of the providers."""
    checked, shared = _checked(providers)
    objects: list[dict] = []
    for kind in ("image", "flavor", "label"):
        objects += [{kind: copy.deepcopy(obj)} for obj in shared[kind].values()]
    for provider in checked:
        objects.append({"section": copy.deepcopy(provider["section"])})
        objects.append({"provider": {"name": provider["name"], "section": provider["name"]}})
    return objects


def zuul_openstack_connections(providers: object) -> dict[str, dict]:
    """The zuul.conf ``[connection NAME]`` sections the providers need."""
    connections: dict[str, dict] = {}
    users: dict[str, str] = {}
    for provider in _checked(providers)[0]:
        settings: dict = {"driver": "openstack", "cloud": provider["cloud"]}
        _put(settings, "rate", provider["rate"])
        name = provider["connection"]
        if name in connections and connections[name] != settings:
            field = "cloud" if connections[name]["cloud"] != settings["cloud"] else "rate"
            raise AnsibleFilterError(
                f"{provider['where']}: {field} {settings.get(field)!r} differs from "
                f"{connections[name].get(field)!r} in {users[name]}, which uses the same connection "
                f"{name}; give one of them another connection")
        connections[name] = settings
        users.setdefault(name, provider["where"])
    return connections


def _region_names(cloud: Mapping) -> list[str]:
    """The regions openstacksdk accepts for a cloud (empty: not known here)."""
    regions = cloud.get("regions")
    if isinstance(regions, Sequence) and not isinstance(regions, str):
        return [r.get("name") if isinstance(r, Mapping) else r for r in regions]
    region_name = cloud.get("region_name")
    if isinstance(region_name, str) and region_name:
        return region_name.split(",")
    return []


def zuul_clouds_yaml(clouds: object, providers: object = None) -> str:
    """The clouds.yaml text for ``zuul_launcher_clouds``, checked against the providers."""
    if clouds is None:
        clouds = {}
    if not isinstance(clouds, Mapping):
        raise AnsibleFilterError(f"{CLOUDS_VAR} must be a mapping of cloud name to its clouds.yaml "
                                 f"entry, got {type(clouds).__name__}")
    if "clouds" in clouds and len(clouds) == 1 and isinstance(clouds["clouds"], Mapping):
        raise AnsibleFilterError(f"{CLOUDS_VAR} is the content of the clouds: key, not the whole "
                                 "clouds.yaml document: remove the 'clouds:' level")
    for name, cloud in clouds.items():
        if not checks.name(name):
            raise AnsibleFilterError(f"{CLOUDS_VAR}: cloud name {name!r} is not a valid name")
        if not isinstance(cloud, Mapping):
            # Never show the value: it holds credentials.
            raise AnsibleFilterError(f"{CLOUDS_VAR}.{name}: expected a mapping (the cloud's "
                                     f"clouds.yaml entry), got {type(cloud).__name__}")
    for provider in _checked(providers)[0]:
        cloud = clouds.get(provider["cloud"])
        if cloud is None:
            raise AnsibleFilterError(
                f"{provider['where']}: cloud {provider['cloud']!r} is not in {CLOUDS_VAR} "
                f"(clouds: {', '.join(sorted(map(str, clouds))) or 'none'})")
        known = _region_names(cloud)
        if provider["region"] and known and provider["region"] not in known:
            raise AnsibleFilterError(
                f"{provider['where']}: region {provider['region']!r} is not a region of cloud "
                f"{provider['cloud']} in {CLOUDS_VAR} ({', '.join(map(str, known))})")
    document = {"clouds": _native(clouds, CLOUDS_VAR)}
    return yaml.dump(document, Dumper=_IndentedDumper, explicit_start=True, default_flow_style=False,
                     sort_keys=True)


class _IndentedDumper(yaml.SafeDumper):
    """SafeDumper indenting lists inside mappings (yamllint's default style)."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        return super().increase_indent(flow, False)


class FilterModule:
    def filters(self):
        return {
            "devinfra_zuul_openstack": zuul_openstack,
            "devinfra_zuul_openstack_connections": zuul_openstack_connections,
            "devinfra_zuul_clouds_yaml": zuul_clouds_yaml,
        }
