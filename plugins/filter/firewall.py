"""Filters that turn firewall variables into checked, normalised rules.

``devinfra_firewall_rules`` takes a mapping of variable name to rule list (the
role's ``base_firewall_allow`` and every ``base_firewall_allow_<suffix>``) and
returns one sorted, de-duplicated list of rules the nftables template can
trust:

    {"port": "443", "proto": "tcp", "family": "", "source": "", "comment": "https"}

``family`` is ``ip`` or ``ip6`` when a source is given. A bad entry raises an
error naming the variable, the entry's index and what is wrong with it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence

try:
    from ansible.errors import AnsibleFilterError
except ImportError:  # pragma: no cover - only without ansible installed
    AnsibleFilterError = ValueError  # type: ignore[misc,assignment]

_KEYS = {"port", "proto", "source", "comment"}


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


def _rule(entry: object, where: str) -> dict[str, str]:
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
    source = str(entry.get("source") or "")
    family = ""
    if source:
        try:
            network = ipaddress.ip_network(source, strict=False)
        except ValueError:
            raise AnsibleFilterError(
                f"{where}: source {source!r} is not an address or CIDR network"
            ) from None
        source = str(network)
        family = "ip" if network.version == 4 else "ip6"
    comment = str(entry.get("comment") or "").replace('"', "'")
    return {
        "port": _port(entry["port"], where),
        "proto": proto,
        "family": family,
        "source": source,
        "comment": comment,
    }


def firewall_rules(rule_lists: Mapping[str, object]) -> list[dict[str, str]]:
    if not isinstance(rule_lists, Mapping):
        raise AnsibleFilterError(
            "devinfra_firewall_rules expects a mapping of variable name to rule list"
        )
    rules: dict[tuple[str, str, str], dict[str, str]] = {}
    for name, rule_list in rule_lists.items():
        if rule_list is None:
            continue
        if not isinstance(rule_list, Sequence) or isinstance(rule_list, str):
            raise AnsibleFilterError(f"{name} is not a list of rules: {rule_list!r}")
        for index, entry in enumerate(rule_list):
            rule = _rule(entry, f"{name}[{index}]")
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
