"""Benchmark: our openstack_fleet inventory plugin against openstack.cloud's.

Four simulated clouds (tests/fake_openstack: a SIMULATED OpenStack API on
127.0.0.1, not OpenStack) of 2,500 servers each answer every request after
100 ms. On the same clouds.yaml, in one run, this times
``ansible-inventory --list`` with:

1. openstack_fleet, cold (empty cache),
2. openstack_fleet, warm (the cache the cold run wrote),
3. openstack.cloud.openstack from the pinned ``ansible`` bundle (its cache off),
4. no cloud plugin at all: a static script printing the cold run's hosts,
   groups and variables, to show what ansible-inventory itself costs for them,

checks that the plugins list the same 10,000 hosts and that the warm run made
no request, and prints the times, request counts and ratios. Run by
tools/run-bench.sh (``make bench``) from the repository root; exits non-zero
when a check fails, not when a goal is missed.
"""

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.fake_openstack

from tests.fake_openstack import FakeCloud, clouds_yaml  # noqa: E402

CLOUDS, SERVERS, LATENCY = 4, 2500, 0.1
GOAL_COLD_RATIO = 3.0


def plain(value):
    """ansible-inventory prints an unsafe string as {"__ansible_unsafe": "..."}: unwrap them."""
    if isinstance(value, dict):
        if set(value) == {"__ansible_unsafe"}:
            return value["__ansible_unsafe"]
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def write_sources(work: Path, clouds: list[FakeCloud]) -> tuple[Path, Path]:
    """clouds.yaml and the two plugins' inventory sources."""
    (work / "clouds.yaml").write_text(yaml.safe_dump(clouds_yaml(*clouds)))
    ours = work / "fleet.openstack_fleet.yaml"
    ours.write_text(yaml.safe_dump({"plugin": "openstack_fleet", "cache": True, "cache_plugin": "jsonfile",
                                    "cache_connection": str(work / "cache")}))
    theirs = work / "openstack.yaml"  # openstack.cloud reads files named openstack.y(a)ml or clouds.y(a)ml
    theirs.write_text(yaml.safe_dump({"plugin": "openstack.cloud.openstack", "cache": False,
                                      "fail_on_errors": True}))
    return ours, theirs


def write_static_script(work: Path, listing: dict) -> Path:
    """An executable inventory script printing ``listing`` (hosts, groups, variables)."""
    (work / "static.json").write_text(json.dumps(plain(listing)))
    script = work / "static.py"
    script.write_text(f"#!{sys.executable}\nimport sys\n"
                      f"sys.stdout.write(open({str(work / 'static.json')!r}).read())\n")
    script.chmod(0o755)
    return script


def run_inventory(source: Path, env: dict, clouds: list[FakeCloud]) -> tuple[float, int, dict]:
    """Time one ``ansible-inventory --list``: (seconds, API requests made, its JSON)."""
    before = sum(len(c.requests) for c in clouds)
    start = time.monotonic()
    run = subprocess.run(["ansible-inventory", "-i", str(source), "--list"], env=env,
                         capture_output=True, text=True, check=False, timeout=600)
    seconds = time.monotonic() - start
    if run.returncode != 0:
        sys.exit(f"ansible-inventory -i {source} failed:\n{run.stderr}")
    return seconds, sum(len(c.requests) for c in clouds) - before, json.loads(run.stdout)


def bench(work: Path) -> int:
    clouds = [FakeCloud(f"bench{i + 1}", servers=SERVERS, latency=LATENCY) for i in range(CLOUDS)]
    for cloud in clouds:
        cloud.start()
    ours, theirs = write_sources(work, clouds)
    # openstack.cloud 2.5.0's plugin reads openstack.version.__version__, a
    # module openstacksdk 4.22 no longer imports with the package: without
    # this shim it fails with "module 'openstack' has no attribute 'version'".
    (work / "shim").mkdir()
    (work / "shim" / "sitecustomize.py").write_text("import openstack.version  # noqa: F401\n")
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
               OS_CLIENT_CONFIG_FILE=str(work / "clouds.yaml"),
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    print(f"{CLOUDS} simulated clouds x {SERVERS} servers, {LATENCY * 1000:.0f} ms per request")

    results = {"openstack_fleet cold": run_inventory(ours, env, clouds)}
    results["openstack_fleet warm"] = run_inventory(ours, env, clouds)
    results["openstack.cloud cold"] = run_inventory(theirs, dict(env, PYTHONPATH=str(work / "shim")), clouds)
    static_script = write_static_script(work, results["openstack_fleet cold"][2])
    results["same, static script"] = run_inventory(static_script, env, clouds)
    for cloud in clouds:
        cloud.stop()

    print(f"\n{'ansible-inventory --list':<26}{'seconds':>8}{'requests':>10}{'hosts':>8}")
    for name, (seconds, requests, data) in results.items():
        print(f"{name:<26}{seconds:>8.1f}{requests:>10}{len(data['_meta']['hostvars']):>8}")
    cold, warm, theirs_cold, static = (seconds for seconds, _, _ in results.values())
    ratio = theirs_cold / cold
    print(f"\ncold: openstack.cloud / openstack_fleet = {ratio:.1f}x "
          f"(goal >= {GOAL_COLD_RATIO:g}x: {'met' if ratio >= GOAL_COLD_RATIO else 'MISSED'})")
    print(f"warm: {warm:.1f} s with no request; the same {CLOUDS * SERVERS} hosts from a static script: "
          f"{static:.1f} s (ansible-inventory's own work)")

    problems = []
    cold_vars, warm_vars, theirs_vars = (results[name][2]["_meta"]["hostvars"] for name in list(results)[:3])
    if set(cold_vars) == set(warm_vars) == set(theirs_vars) and len(cold_vars) == CLOUDS * SERVERS:
        differ = [h for h in cold_vars if plain(cold_vars[h].get("ansible_host"))
                  != plain(theirs_vars[h].get("ansible_host"))]
        print(f"same {len(cold_vars)} hosts from both plugins; ansible_host differs for {len(differ)}")
    else:
        problems.append(f"the plugins do not list the same {CLOUDS * SERVERS} hosts")
    if results["openstack_fleet warm"][1]:
        problems.append("the warm run made API requests")
    for problem in problems:
        print(f"FAILED: {problem}")
    return 1 if problems else 0


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="bench-openstack-") as tmp:
        return bench(Path(tmp))


if __name__ == "__main__":
    sys.exit(main())
