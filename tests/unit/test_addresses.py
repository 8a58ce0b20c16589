"""devinfra launch-node and the openstack_fleet inventory choose a server's
address by one rule (devinfra/addresses.py)."""

import importlib.util
import sys
from pathlib import Path

import pytest

from devinfra import addresses

ROOT = Path(__file__).resolve().parents[2]


def fleet_plugin():
    spec = importlib.util.spec_from_file_location("openstack_fleet_under_test",
                                                  ROOT / "plugins/inventory/openstack_fleet.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def address(addr, version, kind=None):
    entry = {"addr": addr, "version": version}
    if kind:
        entry["OS-EXT-IPS:type"] = kind
    return entry


@pytest.mark.parametrize(("networks", "host", "a", "aaaa"), [
    ({"public": [address("203.0.113.5", 4, "floating"), address("2001:db8::5", 6, "floating")],
      "private": [address("10.0.0.5", 4, "fixed")]}, "203.0.113.5", "203.0.113.5", "2001:db8::5"),
    # A floating IPv6 address comes before a fixed IPv4 one (launch took the IPv4 before).
    ({"private": [address("10.0.0.5", 4, "fixed")], "public": [address("2001:db8::5", 6, "floating")]},
     "2001:db8::5", "10.0.0.5", "2001:db8::5"),
    # No type: fixed, as Nova means it.
    ({"private": [address("10.0.0.6", 4), address("fd00::6", 6)]}, "10.0.0.6", "10.0.0.6", "fd00::6"),
    ({"v6only": [address("2001:db8::7", 6, "fixed")]}, "2001:db8::7", None, "2001:db8::7"),
    ({}, None, None, None),
    (None, None, None, None),
])
def test_launch_and_the_inventory_choose_the_same_address(networks, host, a, aaaa):
    assert addresses.preferred(networks) == host
    assert addresses.by_version(networks) == (a, aaaa)
    # The plugin runs this very module, loaded by its path.
    assert fleet_plugin().addresses.preferred(networks) == host
