"""Benchmark: how Ansible reaches the hosts, on the same idempotent converge.

The test hosts (molecule, the AIO) are containers on this machine; the
bastion reaches production hosts over SSH. One converge (bench/connection/
converge.yaml: the base and webfront roles on two hosts, about 60 tasks a
host) is run to completion once, then timed again unchanged (every task
"ok", none "changed") with each way of connecting, round-robin, in one run:

  docker            docker exec per task, no pipelining (before this bench)
  docker+pipe       docker exec, the module piped to python on stdin
  ssh+pipe          SSH with ControlPersist and pipelining (the bastion's way)
  mitogen-docker    mitogen's strategy over docker (molecule, make aio)
  mitogen-ssh       mitogen's strategy over SSH

Prints the median seconds of each (BENCH_ROUNDS, default 3) and its ratio to
the first, and writes .artifacts/bench-connection.json. The hosts are a set
of their own (devinfra-bench-connection), removed at the end unless
BENCH_KEEP=1. Figures, not a pass/fail test; a converge that changes
something or fails stops the bench.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SET = "bench-connection"
HOSTS = ["conn1", "conn2"]
PLAYBOOK = ROOT / "bench" / "connection" / "converge.yaml"
RECAP = re.compile(r"^(\S+)\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)
VARIANTS = {
    "docker": {"connection": "docker", "strategy": "linear", "pipelining": "False"},
    "docker+pipe": {"connection": "docker", "strategy": "linear", "pipelining": "True"},
    "ssh+pipe": {"connection": "ssh", "strategy": "linear", "pipelining": "True"},
    "mitogen-docker": {"connection": "docker", "strategy": "mitogen_linear", "pipelining": "True"},
    "mitogen-ssh": {"connection": "ssh", "strategy": "mitogen_linear", "pipelining": "True"},
}


def say(message: str) -> None:
    print(f"bench-connection: {message}", file=sys.stderr, flush=True)


def devinfra(*args: str) -> str:
    return subprocess.run(["devinfra", *args], check=True, capture_output=True, text=True).stdout


def write_inventory(directory: Path, key: Path) -> dict[str, Path]:
    rows = json.loads(devinfra("hosts", "list", "--set", SET, "--json"))
    address = {row["host"]: row["address"] for row in rows}
    inventories = {}
    for kind in ("docker", "ssh"):
        hosts = {}
        for name in HOSTS:
            if kind == "docker":
                hosts[name] = {"ansible_connection": "docker", "ansible_host": f"devinfra-{SET}-{name}"}
            else:
                hosts[name] = {
                    "ansible_connection": "ssh", "ansible_host": address[name], "ansible_user": "bench",
                    "ansible_become": True, "ansible_ssh_private_key_file": str(key),
                    "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null",
                }
        path = directory / f"{kind}.yaml"
        path.write_text(json.dumps({"all": {"hosts": hosts,
                                            "vars": {"ansible_python_interpreter": "/usr/bin/python3"}}}))
        inventories[kind] = path
    return inventories


def converge(inventory: Path, variant: dict, key: Path, control_dir: Path) -> tuple[float, dict]:
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_STRATEGY=variant["strategy"], ANSIBLE_PIPELINING=variant["pipelining"],
               ANSIBLE_GATHERING="implicit", ANSIBLE_CACHE_PLUGIN="memory",
               ANSIBLE_SSH_CONTROL_PATH_DIR=str(control_dir), BENCH_KEY=str(key),
               # The hosts are made for this run: their keys are new each time.
               ANSIBLE_HOST_KEY_CHECKING="False")
    start = time.monotonic()
    proc = subprocess.run(["ansible-playbook", "-i", str(inventory), str(PLAYBOOK)],
                          capture_output=True, text=True, env=env, check=False)
    seconds = time.monotonic() - start
    recap = {h: {"ok": int(o), "changed": int(c), "failed": int(f) + int(u)}
             for h, o, c, u, f in RECAP.findall(proc.stdout)}
    if proc.returncode != 0 or sorted(recap) != HOSTS:
        sys.exit(f"bench-connection: the converge failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}")
    return seconds, recap


def main() -> int:
    rounds = int(os.environ.get("BENCH_ROUNDS", "3"))
    with tempfile.TemporaryDirectory(prefix="bench-connection-") as tmp:
        tmpdir = Path(tmp)
        key = tmpdir / "id_bench"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "bench@devinfra",
                        "-f", str(key)], check=True)
        say(f"creating the hosts ({', '.join(HOSTS)}) of set {SET}")
        devinfra("hosts", "create", "--set", SET, *HOSTS)
        try:
            inventories = write_inventory(tmpdir, key)
            control = tmpdir / "cp"
            control.mkdir()
            say("first converge (installs; not timed)")
            converge(inventories["docker"], VARIANTS["mitogen-docker"], key, control)
            times: dict[str, list[float]] = {name: [] for name in VARIANTS}
            tasks = 0
            for round_ in range(1, rounds + 1):
                for name, variant in VARIANTS.items():
                    seconds, recap = converge(inventories[variant["connection"]], variant, key, control)
                    changed = sum(r["changed"] for r in recap.values())
                    if changed:
                        sys.exit(f"bench-connection: {name} changed {changed} thing(s): not idempotent")
                    tasks = sum(r["ok"] for r in recap.values())
                    times[name].append(round(seconds, 2))
                    say(f"round {round_}: {name:15} {seconds:6.1f} s ({tasks} tasks ok, 0 changed)")
        finally:
            if os.environ.get("BENCH_KEEP") != "1":
                devinfra("hosts", "destroy", "--set", SET)
    medians = {name: statistics.median(values) for name, values in times.items()}
    base = medians["docker"]
    report = {
        "playbook": str(PLAYBOOK.relative_to(ROOT)), "hosts": HOSTS, "tasks_ok_per_run": tasks,
        "rounds": rounds, "seconds": times, "median_seconds": medians,
        "speedup_over_docker": {name: round(base / value, 2) for name, value in medians.items()},
    }
    out = ROOT / ".artifacts" / "bench-connection.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"idempotent converge of {report['playbook']} on {len(HOSTS)} hosts, "
          f"{tasks} tasks ok (median of {rounds}):")
    for name, value in medians.items():
        print(f"  {name:15} {value:7.2f} s   {base / value:5.2f}x docker")
    print(f"written: {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
