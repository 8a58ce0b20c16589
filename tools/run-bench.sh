#!/usr/bin/env bash
# Run every benchmark in bench/ (bench_*.py, bench_*.sh), one after the other, in one
# run, and keep their reports in .artifacts/bench/. Benchmarks print their
# own figures and ratios; they are not pass/fail tests.
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
export ANSIBLE_CONFIG="$PWD/ansible.cfg"
mkdir -p .artifacts/bench
status=0
for bench in bench/bench_*.py bench/bench_*.sh; do
  [ -e "$bench" ] || continue
  name=$(basename "${bench%.*}")
  printf '\n=== %s\n' "$name"
  case $bench in *.py) run=(python "$bench") ;; *) run=(bash "$bench") ;; esac
  if ! "${run[@]}" 2>&1 | tee ".artifacts/bench/$name.txt"; then
    echo "FAILED: $name"
    status=1
  fi
done
exit $status
