"""Benchmark of the yamlgroup inventory plugin against a naive evaluation.

Generates 10,000 hosts and 300 pattern groups (globs with literal prefixes,
globs without, regexes, exact names, exclusions, @references), then times on
the same data in the same run:

- the plugin's evaluation: compiling the groups and selecting every group's
  hosts (best of several runs);
- a naive evaluation, per host and per pattern with ``fnmatch.fnmatch`` (and
  ``re.fullmatch`` for ``^`` regexes), as OpenDev's plugin does;
- for context, the plugin's whole ``parse`` into Ansible's InventoryData:
  reading the YAML file, evaluating, and adding the memberships.

Both evaluations must give identical memberships. Run from the repository
root with the venv: ``python bench/bench_yamlgroup.py`` (tools/run-bench.sh).
"""

import fnmatch
import importlib.util
import random
import re
import sys
import tempfile
import time
from pathlib import Path

import yaml
from ansible.inventory.data import InventoryData
from ansible.parsing.dataloader import DataLoader

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("yamlgroup", ROOT / "plugins/inventory/yamlgroup.py")
yamlgroup = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(yamlgroup)

ROLES = ["web", "api", "db", "cache", "mq", "zk", "zuul", "ze", "nl", "mirror", "review", "etherpad",
         "logs", "graphite", "grafana", "paste", "wiki", "lists", "static", "storyboard", "ns", "dns",
         "backup", "bastion", "proxy", "lb", "git", "gitea", "registry", "builder", "nodepool", "elk",
         "kibana", "es", "influx", "prom", "alert", "vault", "ldap", "mail", "smtp", "imap", "ci",
         "ara", "docs", "tarballs", "translate", "ask", "meetpad", "jvb"]
REGIONS = ["dfw", "ord", "iad", "sjc", "lon", "fra", "ams", "syd"]
PER_ROLE_REGION = 25  # 50 roles x 8 regions x 25 = 10,000 hosts
PLUGIN_RUNS = 7
NAIVE_RUNS = 2
PARSE_RUNS = 3


def make_hosts() -> list[str]:
    return [f"{role}{number:02d}.{region}.example.org"
            for role in ROLES for region in REGIONS for number in range(1, PER_ROLE_REGION + 1)]


def make_groups(hosts: list[str], rng: random.Random) -> dict[str, object]:
    """300 groups in the mix a large site would write."""
    groups: dict[str, object] = {}
    for role in ROLES:  # 50 role groups, one in three without its "syd" hosts
        groups[role] = [f"{role}[0-9]*.*.example.org"]
        if rng.random() < 1 / 3:
            groups[role].append("!*.syd.example.org")
    placed = rng.sample([(role, region) for role in ROLES for region in REGIONS], 150)
    for role, region in placed:  # 150 globs with a long literal prefix
        groups[f"{role}_{region}"] = f"{role}[0-9]*.{region}.example.org"
    for index in range(30):  # 30 regexes, one in three excluding canaries by regex
        role, other = rng.sample(ROLES, 2)
        regions = "|".join(rng.sample(REGIONS, 2))
        groups[f"regex_{index}"] = [rf"^({role}|{other})(0[1-9]|1[0-9])\.({regions})\.example\.org"]
        if index % 3 == 0:
            groups[f"regex_{index}"].append(rf"!^{role}0[1-3]\..*")
    for index, region in enumerate(REGIONS * 3):  # 24 globs without a literal prefix
        groups[f"region_{index}"] = [f"*[{index % 10}].{region}.example.org", f"!{rng.choice(ROLES)}*"]
    for index in range(26):  # 26 lists of exact names, one of them not in the inventory
        groups[f"exact_{index}"] = [*rng.sample(hosts, 4), f"gone{index}.example.org"]
    for index in range(20):  # 20 groups of references, some to other reference groups
        first, excluded = rng.sample(ROLES, 2)
        second = f"ref_{index - 1}" if index % 4 == 3 else "_".join(rng.choice(placed))
        groups[f"ref_{index}"] = [f"@{first}", f"@{second}", f"!@{excluded}"]
    assert len(groups) == 300, len(groups)
    return groups


def naive(hosts: list[str], groups: dict[str, object]) -> dict[str, set[str]]:
    """Per host, per pattern: fnmatch.fnmatch for globs, re.fullmatch for regexes."""

    def matches(host: str, pattern: str) -> bool:
        if pattern.startswith("^"):
            return re.fullmatch(pattern, host) is not None
        return fnmatch.fnmatch(host, pattern)

    result: dict[str, set[str]] = {}

    def members(group: str) -> set[str]:
        if group not in result:
            entries = groups[group]
            entries = [entries] if isinstance(entries, str) else entries
            included, excluded = set(), set()
            for entry in entries:
                exclude = entry.startswith("!")
                pattern = entry[1:] if exclude else entry
                target = excluded if exclude else included
                if pattern.startswith("@"):
                    target |= members(pattern[1:])
                else:
                    target |= {host for host in hosts if matches(host, pattern)}
            result[group] = included - excluded
        return result[group]

    for group in groups:
        members(group)
    return result


def plugin(hosts: list[str], groups: dict[str, object]) -> dict[str, set[str]]:
    """The plugin's evaluation: compile the groups, then select their hosts."""
    return yamlgroup.PatternGroups("bench", groups).select(hosts, {})


def plugin_parse(hosts: list[str], path: Path) -> float:
    """Seconds the plugin's parse of *path* takes on an InventoryData holding *hosts*."""
    inventory = InventoryData()
    for host in hosts:
        inventory.add_host(host, "all")
    re.purge()
    start = time.perf_counter()
    yamlgroup.InventoryModule().parse(inventory, DataLoader(), str(path))
    return time.perf_counter() - start


def best(runs: int, function, *args) -> tuple[float, object]:
    """The shortest time of *runs* calls, and the result.

    Each run starts with an empty ``re`` cache, as a fresh Ansible process does.
    """
    times = []
    for _ in range(runs):
        re.purge()
        start = time.perf_counter()
        result = function(*args)
        times.append(time.perf_counter() - start)
    return min(times), result


def main() -> int:
    hosts = make_hosts()
    groups = make_groups(hosts, random.Random(20240601))  # noqa: S311 - reproducible data
    print(f"{len(hosts)} hosts, {len(groups)} groups, "
          f"{sum(1 if isinstance(v, str) else len(v) for v in groups.values())} entries")

    plugin_time, plugin_result = best(PLUGIN_RUNS, plugin, hosts, groups)
    naive_time, naive_result = best(NAIVE_RUNS, naive, hosts, groups)
    if plugin_result != naive_result:
        differ = sorted(g for g in groups if plugin_result.get(g) != naive_result.get(g))
        print(f"MISMATCH: the plugin and the naive evaluation differ for {differ[:10]}")
        return 1
    memberships = sum(map(len, plugin_result.values()))
    print(f"memberships: {memberships}, identical in both evaluations")

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "groups.yaml")
        path.write_text(yaml.safe_dump({"plugin": "yamlgroup", "groups": groups}))
        parse_time = min(plugin_parse(hosts, path) for _ in range(PARSE_RUNS))

    print(f"plugin evaluation (best of {PLUGIN_RUNS}):  {plugin_time * 1000:8.1f} ms")
    print(f"naive evaluation (best of {NAIVE_RUNS}):   {naive_time * 1000:8.1f} ms")
    print(f"ratio naive / plugin:          {naive_time / plugin_time:8.1f}x")
    print(f"plugin parse into Ansible's InventoryData, YAML and memberships included "
          f"(best of {PARSE_RUNS}): {parse_time * 1000:.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
