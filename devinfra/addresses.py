"""Which of a server's addresses Ansible connects to: one rule for
``devinfra launch-node`` (the host it adds to the inventory) and the
openstack_fleet inventory plugin (``ansible_host``).

Nova lists a server's addresses per network, each with its ``version`` and
``OS-EXT-IPS:type`` (``floating`` or ``fixed``; fixed when absent). The
preference: floating IPv4, floating IPv6, fixed IPv4, fixed IPv6, in
network order within each.

The plugin loads this file by its path in the same checkout, as yamlgroup
loads safe_yaml.py (the bastion's Ansible has no devinfra package; see
devinfra/safe_yaml.py), so it imports nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

PREFERENCE = (("floating", 4), ("floating", 6), ("fixed", 4), ("fixed", 6))


def preferred(addresses: Mapping | None, versions: Iterable[int] = (4, 6)) -> str | None:
    """The first address by PREFERENCE among these IP versions; None if there is none."""
    wanted = set(versions)
    found = [a for network in (addresses or {}).values() for a in network if isinstance(a, Mapping)]
    for kind, version in PREFERENCE:
        if version not in wanted:
            continue
        for address in found:
            if address.get("OS-EXT-IPS:type", "fixed") == kind and address.get("version") == version:
                return address.get("addr")
    return None


def by_version(addresses: Mapping | None) -> tuple[str | None, str | None]:
    """The preferred IPv4 and IPv6 addresses (a host's A and AAAA records)."""
    return preferred(addresses, (4,)), preferred(addresses, (6,))
