#!/usr/bin/env bash
# Benchmark of the package mirror (roles/mirror): how long `pip install` of
# a fixed set of twelve pure wheels (pinned, --no-deps) takes on a CI node
#   1. direct from PyPI (pypi.org and files.pythonhosted.org),
#   2. through a cold mirror (its cache emptied first),
#   3. through the warm mirror (every file already cached),
# each in a fresh venv with --no-cache-dir, BENCH_ROUNDS times (default 5),
# all in one run. Prints the medians and the warm/direct ratio and writes
# .artifacts/bench-mirror.json.
#
# Hosts: the molecule scenario `mirror` (mirror1 runs the role, mirrorclient1
# is the client). When its containers are not running the script converges
# the scenario itself (`molecule converge -s mirror`: create, prepare,
# converge, about a minute) and destroys it at the end; when they are
# running (a scenario converged by hand) it uses them and leaves them.
# BENCH_KEEP=1 keeps the containers it created.
#
# "Direct" goes through whatever the machine's network puts between it and
# PyPI (here a TLS-inspecting proxy), so it is the baseline CI nodes would
# see without a mirror, not PyPI's own speed.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
export ANSIBLE_CONFIG="$PWD/ansible.cfg"

rounds=${BENCH_ROUNDS:-5}
mirror=devinfra-molecule-mirror-mirror1
client=devinfra-molecule-mirror-mirrorclient1
packages="idna==3.10 six==1.17.0 attrs==25.3.0 certifi==2025.8.3 urllib3==2.5.0 requests==2.32.5
packaging==25.0 pyparsing==3.2.3 typing_extensions==4.14.1 click==8.2.1 jinja2==3.1.6 pygments==2.19.2"
packages=$(echo $packages)
pip_opts="--no-cache-dir --no-deps --disable-pip-version-check -q"
log=/var/log/nginx/mirror.access.log

say() { printf 'bench-mirror: %s\n' "$*" >&2; }
running() { [ "$(docker inspect -f '{{.State.Running}}' "$1" 2>/dev/null)" = true ]; }

mkdir -p .artifacts
created=0
if running "$mirror" && running "$client"; then
  say "using the running mirror scenario (left as it is)"
else
  say "converging the mirror scenario (molecule converge -s mirror)"
  molecule converge -s mirror >.artifacts/bench-mirror-converge.log 2>&1 || {
    tail -n 40 .artifacts/bench-mirror-converge.log >&2; exit 1; }
  created=1
fi
cleanup() {
  if [ "$created" = 1 ] && [ "${BENCH_KEEP:-0}" != 1 ]; then
    say "destroying the scenario"
    molecule destroy -s mirror >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT

# Seconds that one pip install takes in a fresh venv (venv creation not
# counted); fails the benchmark when pip fails.
time_install() {
  local index=$1
  docker exec "$client" sh -c "rm -rf /tmp/bench-venv && python3 -m venv /tmp/bench-venv" >/dev/null
  docker exec "$client" sh -c "
    start=\$(date +%s.%N)
    /tmp/bench-venv/bin/pip install $pip_opts --index-url $index $packages >/tmp/bench-pip.log 2>&1 \
      || { cat /tmp/bench-pip.log >&2; exit 1; }
    end=\$(date +%s.%N)
    echo \"\$end - \$start\" | python3 -c 'import sys; print(round(eval(sys.stdin.read()), 3))'"
}

empty_cache() {
  docker exec "$mirror" sh -c 'systemctl stop nginx && rm -rf /var/cache/nginx/mirror/* && systemctl start nginx'
}

# How many wheels the mirror's access log shows served with this cache status.
count() {
  docker exec "$mirror" sh -c "grep -c '\"GET /pypifiles/[^ ]*\\.whl HTTP/[^ ]*\" 200 [0-9]* cache=$1 ' $log || true"
}

direct=() cold=() warm=()
warm_hits=0 cold_misses=0
for round in $(seq 1 "$rounds"); do
  direct+=("$(time_install https://pypi.org/simple/)")
  empty_cache
  before=$(count MISS)
  cold+=("$(time_install https://mirror1/pypi/simple/)")
  cold_misses=$(( $(count MISS) - before ))
  before=$(count HIT)
  warm+=("$(time_install https://mirror1/pypi/simple/)")
  warm_hits=$(( $(count HIT) - before ))
  say "round $round: direct ${direct[-1]}s, cold mirror ${cold[-1]}s ($cold_misses of 12 wheels missed)," \
      "warm mirror ${warm[-1]}s ($warm_hits of 12 wheels were cache hits)"
done

python3 - "$rounds" "$warm_hits" "$cold_misses" "$packages" "${direct[*]}" "${cold[*]}" "${warm[*]}" <<'PY'
import json
import statistics
import sys

rounds, warm_hits, cold_misses = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
packages = sys.argv[4].split()
runs = {name: [float(x) for x in sys.argv[i].split()] for i, name in
        ((5, "direct"), (6, "cold_mirror"), (7, "warm_mirror"))}
medians = {name: round(statistics.median(values), 3) for name, values in runs.items()}
report = {
    "packages": packages,
    "rounds": rounds,
    "seconds": runs,
    "median_seconds": medians,
    "warm_over_direct": round(medians["warm_mirror"] / medians["direct"], 3),
    "cold_over_direct": round(medians["cold_mirror"] / medians["direct"], 3),
    "cold_wheel_cache_misses_last_round": cold_misses,
    "warm_wheel_cache_hits_last_round": warm_hits,
}
with open(".artifacts/bench-mirror.json", "w") as out:
    json.dump(report, out, indent=2)
    out.write("\n")
print(f"pip install of {len(packages)} wheels, fresh venv, --no-cache-dir (median of {rounds}):")
for name, value in medians.items():
    print(f"  {name:12} {value:7.3f} s")
print(f"  warm/direct  {report['warm_over_direct']:7.3f}")
print(f"  cold/direct  {report['cold_over_direct']:7.3f}")
print("written: .artifacts/bench-mirror.json")
PY
