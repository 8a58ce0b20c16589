"""Filters that turn firewall variables into checked, normalised rules.

``devinfra_firewall_rules`` takes a mapping of variable name to rule list (the
role's ``base_firewall_allow`` and every ``base_firewall_allow_<suffix>``) and
returns one sorted, de-duplicated list of rules the nftables template can
trust:

    {"port": "443", "proto": "tcp", "family": "", "source": "", "comment": "https"}

``family`` is ``ip`` or ``ip6`` when a source is given. A bad entry raises an
error naming the variable, the entry's index and what is wrong with it.

A rule with ``source_groups: [group, ...]`` instead of ``source`` becomes one
rule per address of the hosts of those inventory groups (the comment names
the host); no address, no rule. That needs the play's ``groups`` and
``hostvars``: ``rule_lists | devinfra_firewall_rules(groups, hostvars)``. A
host's addresses are, in this order: its ``base_host_addresses``; its
``ansible_host`` (or inventory name) when that is an IP address; the
addresses of its gathered facts (``default_ipv4``, ``default_ipv6``).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence

try:
    from ansible.errors import AnsibleFilterError
except ImportError:  # pragma: no cover - only without ansible installed
    AnsibleFilterError = ValueError  # type: ignore[misc,assignment]

_KEYS = {"port", "proto", "source", "source_groups", "comment"}


def _port(value: object, where: str) -> str:
    text = str(value).strip()
    first, sep, last = text.partition("-")
    try:
        low = int(first)
        high = int(last) if sep else low
    except ValueError:
        raise AnsibleFilterError(
            f"{where}: port {value!r} is not a number or a 'first-last' range"
        ) from None
    if not (1 <= low <= 65535 and 1 <= high <= 65535):
        raise AnsibleFilterError(f"{where}: port {value!r} is outside 1-65535")
    if sep and low >= high:
        raise AnsibleFilterError(f"{where}: port range {value!r} must go upwards")
    return f"{low}-{high}" if sep else str(low)


def _is_list(value: object) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, str)


def _ip(value: object) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(str(value).strip())
    except ValueError:
        return None


class _Inventory:
    """The play's groups and the addresses of their hosts, looked up once each."""

    def __init__(self, groups: object, hostvars: object) -> None:
        self.groups = groups
        self.hostvars = hostvars
        self._addresses: dict[str, list[str]] = {}

    def hosts(self, group: str, where: str) -> list[str]:
        if not isinstance(self.groups, Mapping) or not isinstance(self.hostvars, Mapping):
            raise AnsibleFilterError(
                f"{where}: source_groups needs the inventory: call "
                "devinfra_firewall_rules(groups, hostvars)"
            )
        if group not in self.groups:
            raise AnsibleFilterError(f"{where}: source_groups: no group {group!r} in the inventory")
        return [str(host) for host in self.groups[group] or []]

    def addresses(self, host: str, group: str, where: str) -> list[str]:
        if host not in self._addresses:
            self._addresses[host] = self._lookup(host, group, where)
        return self._addresses[host]

    def _lookup(self, host: str, group: str, where: str) -> list[str]:
        hostvars = self.hostvars[host]
        configured = hostvars.get("base_host_addresses")
        if configured:
            if not _is_list(configured):
                raise AnsibleFilterError(
                    f"{where}: base_host_addresses of host {host} (group {group}) "
                    f"is not a list of IP addresses: {configured!r}"
                )
            addresses = []
            for value in configured:
                address = _ip(value)
                if address is None:
                    raise AnsibleFilterError(
                        f"{where}: base_host_addresses of host {host} (group {group}): "
                        f"{value!r} is not an IP address"
                    )
                addresses.append(str(address))
            return addresses
        address = _ip(hostvars.get("ansible_host") or host)
        if address is not None:
            return [str(address)]
        facts = hostvars.get("ansible_facts") or {}
        addresses = []
        for name in ("default_ipv4", "default_ipv6"):
            fact = facts.get(name) if isinstance(facts, Mapping) else None
            address = _ip(fact.get("address")) if isinstance(fact, Mapping) else None
            if address is not None:
                addresses.append(str(address))
        if not addresses:
            raise AnsibleFilterError(
                f"{where}: source_groups: no address known for host {host} (group {group}): "
                "its ansible_host is not an IP address and no facts of it are known. "
                "Gather that host's facts in the play (ansible.cfg keeps them in its "
                "jsonfile cache, .cache/facts) or set base_host_addresses for it"
            )
        return addresses


def _source(value: object, where: str) -> tuple[str, str]:
    """The normalised network and its nftables family ("ip" or "ip6")."""
    try:
        network = ipaddress.ip_network(str(value), strict=False)
    except ValueError:
        raise AnsibleFilterError(
            f"{where}: source {value!r} is not an address or CIDR network"
        ) from None
    return str(network), "ip" if network.version == 4 else "ip6"


def _rules(entry: object, where: str, inventory: _Inventory) -> list[dict[str, str]]:
    if not isinstance(entry, Mapping):
        raise AnsibleFilterError(f"{where}: expected a mapping with a port, got {entry!r}")
    unknown = set(entry) - _KEYS
    if unknown:
        raise AnsibleFilterError(
            f"{where}: unknown key(s) {', '.join(sorted(map(str, unknown)))} "
            f"(allowed: {', '.join(sorted(_KEYS))})"
        )
    if "port" not in entry:
        raise AnsibleFilterError(f"{where}: missing port")
    proto = str(entry.get("proto") or "tcp")
    if proto not in ("tcp", "udp"):
        raise AnsibleFilterError(f"{where}: proto {proto!r} is not tcp or udp")
    port = _port(entry["port"], where)
    comment = str(entry.get("comment") or "").replace('"', "'")

    def rule(source: str, family: str, rule_comment: str) -> dict[str, str]:
        return {"port": port, "proto": proto, "family": family, "source": source,
                "comment": rule_comment}

    if "source_groups" not in entry:
        source = str(entry.get("source") or "")
        return [rule(*(_source(source, where) if source else ("", "")), comment)]
    if "source" in entry:
        raise AnsibleFilterError(f"{where}: has both source and source_groups; give one of them")
    groups = entry["source_groups"]
    if not _is_list(groups) or not groups or not all(isinstance(g, str) and g for g in groups):
        raise AnsibleFilterError(
            f"{where}: source_groups must be a non-empty list of group names, got {groups!r}"
        )
    rules = []
    for group in groups:
        for host in inventory.hosts(group, where):
            for address in inventory.addresses(host, group, where):
                named = f"{comment} ({host})" if comment else host
                rules.append(rule(*_source(address, where), named))
    return rules


def firewall_rules(rule_lists: Mapping[str, object], groups: object = None,
                   hostvars: object = None) -> list[dict[str, str]]:
    if not isinstance(rule_lists, Mapping):
        raise AnsibleFilterError(
            "devinfra_firewall_rules expects a mapping of variable name to rule list"
        )
    inventory = _Inventory(groups, hostvars)
    rules: dict[tuple[str, str, str], dict[str, str]] = {}
    for name, rule_list in rule_lists.items():
        if rule_list is None:
            continue
        if not _is_list(rule_list):
            raise AnsibleFilterError(f"{name} is not a list of rules: {rule_list!r}")
        for index, entry in enumerate(rule_list):
            for rule in _rules(entry, f"{name}[{index}]", inventory):
                key = (rule["proto"], rule["port"], rule["source"])
                if key in rules and not rule["comment"]:
                    continue
                rules[key] = rule

    def order(rule: dict[str, str]) -> tuple:
        return (int(rule["port"].split("-")[0]), rule["proto"], rule["source"])

    return sorted(rules.values(), key=order)


class FilterModule:
    def filters(self):
        return {"devinfra_firewall_rules": firewall_rules}
