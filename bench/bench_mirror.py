"""Benchmark of the package mirror (roles/mirror) behind a realistic upstream.

A region's CI nodes reach the public registries across the internet; the
region's mirror sits next to them. This machine reaches PyPI, npm and
Debian in milliseconds, which hides what a mirror is for, so the bench puts
a wide-area path (bench/wan/wan-emulator.py: every packet from outside the
test hosts' own network delayed by the round-trip time and paced at the
link's rate) on both paths that cross the internet: the client's own path
(direct) and the mirror's path to its upstreams. Client to mirror stays on
the local network.

For each path (none: this machine as it is; 50 ms and 150 ms of added
round trip at 100 Mbit/s) and each package client, it times, in one run:

  direct   the client installs from the public registry
  cold     through the mirror with its cache emptied first
  warm     through the mirror again (every file cached)

  pip   12 pinned pure wheels (--no-deps) into a fresh venv, --no-cache-dir
  npm   express 4.21.2 and its 60-odd dependencies into a fresh directory,
        with an empty npm cache
  apt   `apt-get update` of trixie main and updates, then the download of
        a fixed set of packages (their own lists and archive directories)

BENCH_ROUNDS (default 2) rounds each; medians, and the speed-up of the warm
mirror over direct (direct time / warm time), go to the terminal and to
.artifacts/bench-mirror.json.

Hosts: the molecule scenario `mirror` (mirror1 runs the role, mirrorclient1
is the client). When its containers are not running the bench converges the
scenario itself and destroys it at the end (BENCH_KEEP=1 keeps it); when
they are running it uses them and leaves them as it found them.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MIRROR = "devinfra-molecule-mirror-mirror1"
CLIENT = "devinfra-molecule-mirror-mirrorclient1"
NETWORK = "devinfra-molecule-mirror"
WAN = ROOT / "bench" / "wan" / "wan-emulator.py"
PATHS = [("none", 0, 0), ("50ms-100mbit", 50, 100), ("150ms-100mbit", 150, 100)]
PIP_PACKAGES = ("idna==3.10 six==1.17.0 attrs==25.3.0 certifi==2025.8.3 urllib3==2.5.0 requests==2.32.5 "
                "packaging==25.0 pyparsing==3.2.3 typing_extensions==4.14.1 click==8.2.1 jinja2==3.1.6 "
                "pygments==2.19.2")
NPM_PACKAGE = "express@4.21.2"
APT_PACKAGES = "hello jq tree bc rsync file"
INDEXES = {
    "pip": {"direct": "https://pypi.org/simple/", "mirror": "http://mirror1/pypi/simple/"},
    "npm": {"direct": "https://registry.npmjs.org/", "mirror": "http://mirror1/npm/"},
    "apt": {"direct": "http://deb.debian.org/debian", "mirror": "http://mirror1/debian"},
}


def say(message: str) -> None:
    print(f"bench-mirror: {message}", file=sys.stderr, flush=True)


def sh(container: str, script: str, check: bool = True) -> str:
    proc = subprocess.run(["docker", "exec", container, "sh", "-c", script], capture_output=True,
                          text=True, check=False)
    if check and proc.returncode != 0:
        sys.exit(f"bench-mirror: on {container}: {script[:200]}\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return proc.stdout


def running(container: str) -> bool:
    proc = subprocess.run(["docker", "inspect", "-f", "{{.State.Running}}", container],
                          capture_output=True, text=True, check=False)
    return proc.stdout.strip() == "true"


WORKLOADS = {
    "pip": ("rm -rf /tmp/bench-venv && python3 -m venv /tmp/bench-venv",
            "/tmp/bench-venv/bin/pip install -q --no-cache-dir --no-deps --disable-pip-version-check "
            "--index-url {index} --trusted-host mirror1 " + PIP_PACKAGES),
    "npm": ("rm -rf /tmp/bench-npm /tmp/bench-npm-cache && mkdir /tmp/bench-npm && cd /tmp/bench-npm "
            "&& echo '{}' > package.json",
            "cd /tmp/bench-npm && npm install --no-save --no-audit --no-fund --loglevel=error "
            "--cache /tmp/bench-npm-cache --registry {index} " + NPM_PACKAGE),
    "apt": ("rm -rf /tmp/bench-apt && mkdir -p /tmp/bench-apt/lists/partial /tmp/bench-apt/archives/partial",
            "printf 'deb {index} trixie main\\ndeb {index} trixie-updates main\\n' "
            "> /tmp/bench-apt/sources.list "
            "&& apt-get -q -o Dir::Etc::SourceList=/tmp/bench-apt/sources.list -o Dir::Etc::SourceParts=- "
            "-o Dir::State::Lists=/tmp/bench-apt/lists -o Dir::Cache::Archives=/tmp/bench-apt/archives "
            "update >/dev/null && apt-get -q -y -o Dir::Etc::SourceList=/tmp/bench-apt/sources.list "
            "-o Dir::Etc::SourceParts=- -o Dir::State::Lists=/tmp/bench-apt/lists "
            "-o Dir::Cache::Archives=/tmp/bench-apt/archives -o Debug::NoLocking=1 "
            "install --download-only --no-install-recommends " + APT_PACKAGES + " >/dev/null"),
}


def timed(tool: str, source: str) -> float:
    """Seconds the workload takes on the client (its preparation not counted)."""
    prepare, run = WORKLOADS[tool]
    sh(CLIENT, prepare)
    command = run.format(index=INDEXES[tool][source])
    out = sh(CLIENT, "start=$(date +%s.%N); " + command + " >/tmp/bench.log 2>&1 || "
             "{ cat /tmp/bench.log; exit 1; }; end=$(date +%s.%N); echo \"$start $end\"")
    start, end = map(float, out.split()[-2:])
    return round(end - start, 2)


def empty_cache() -> None:
    sh(MIRROR, "systemctl stop nginx && rm -rf /var/cache/nginx/mirror/* && systemctl start nginx")


def wan(rtt: int, rate: int, lan: str) -> None:
    for container in (MIRROR, CLIENT):
        sh(container, "/usr/local/bin/wan-emulator stop")
        if rtt or rate:
            sh(container, f"/usr/local/bin/wan-emulator start --lan {lan} --rtt-ms {rtt} --rate-mbit {rate}")


def main() -> int:
    rounds = int(os.environ.get("BENCH_ROUNDS", "2"))
    created = False
    if running(MIRROR) and running(CLIENT):
        say("using the running mirror scenario (left as it is)")
    else:
        say("converging the mirror scenario (molecule converge -s mirror)")
        log = ROOT / ".artifacts" / "bench-mirror-converge.log"
        log.parent.mkdir(exist_ok=True)
        with log.open("w") as out:
            if subprocess.run(["molecule", "converge", "-s", "mirror"], cwd=ROOT, stdout=out,
                              stderr=subprocess.STDOUT, check=False).returncode:
                sys.exit(f"bench-mirror: the mirror scenario did not converge (see {log})")
        created = True
    lan = subprocess.run(["docker", "network", "inspect", NETWORK, "-f", "{{(index .IPAM.Config 0).Subnet}}"],
                         capture_output=True, text=True, check=True).stdout.strip()
    results: dict = {}
    try:
        say(f"installing the WAN emulator on both hosts (LAN {lan} left alone)")
        for container in (MIRROR, CLIENT):
            sh(container, "DEBIAN_FRONTEND=noninteractive apt-get install -y -q iptables "
                          "python3-netfilterqueue >/dev/null")
            subprocess.run(["docker", "cp", str(WAN), f"{container}:/usr/local/bin/wan-emulator"], check=True)
            sh(container, "chmod 0755 /usr/local/bin/wan-emulator")
        for name, rtt, rate in PATHS:
            wan(rtt, rate, lan)
            # The emulator at work: a TCP handshake to PyPI takes the added round
            # trip, and so does the name lookup (Docker's DNS sends it upstream from
            # the container's own network namespace, across the emulated path).
            lookup, connect = (float(x) for x in sh(
                CLIENT, "curl -s -o /dev/null -w '%{time_namelookup} %{time_connect}' https://pypi.org/simple/").split())
            say(f"path {name}: pypi.org name lookup {lookup * 1000:.0f} ms, "
                f"TCP handshake {(connect - lookup) * 1000:.0f} ms")
            handshake = connect - lookup
            results[name] = {"lookup_ms": round(lookup * 1000), "handshake_ms": round(handshake * 1000),
                             "seconds": {}}
            for tool in WORKLOADS:
                runs: dict[str, list[float]] = {"direct": [], "cold": [], "warm": []}
                for round_ in range(1, rounds + 1):
                    runs["direct"].append(timed(tool, "direct"))
                    empty_cache()
                    runs["cold"].append(timed(tool, "mirror"))
                    runs["warm"].append(timed(tool, "mirror"))
                    say(f"path {name}, {tool}, round {round_}: direct {runs['direct'][-1]} s, "
                        f"cold {runs['cold'][-1]} s, warm {runs['warm'][-1]} s")
                results[name]["seconds"][tool] = runs
    finally:
        for container in (MIRROR, CLIENT):
            sh(container, "[ ! -x /usr/local/bin/wan-emulator ] || /usr/local/bin/wan-emulator stop",
               check=False)
        if created and os.environ.get("BENCH_KEEP") != "1":
            say("destroying the scenario")
            subprocess.run(["molecule", "destroy", "-s", "mirror"], cwd=ROOT, capture_output=True,
                           check=False)

    report = {"rounds": rounds, "pip_packages": PIP_PACKAGES.split(), "npm_package": NPM_PACKAGE,
              "apt_packages": APT_PACKAGES.split(), "paths": {}}
    print(f"package installs, median of {rounds} (seconds; speed-up = direct / warm mirror):")
    print(f"  {'path':15} {'client':4} {'direct':>8} {'cold':>8} {'warm':>8} {'speed-up':>9}")
    for name, data in results.items():
        medians = {tool: {k: statistics.median(v) for k, v in runs.items()}
                   for tool, runs in data["seconds"].items()}
        speedups = {tool: round(m["direct"] / m["warm"], 2) for tool, m in medians.items()}
        report["paths"][name] = dict(data, median_seconds=medians, speedup_warm_over_direct=speedups)
        for tool, m in medians.items():
            print(f"  {name:15} {tool:4} {m['direct']:8.2f} {m['cold']:8.2f} {m['warm']:8.2f} "
                  f"{speedups[tool]:8.2f}x")
    report["measured"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    out = ROOT / ".artifacts" / "bench-mirror.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written: {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
