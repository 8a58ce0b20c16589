#!/usr/bin/env bash
# Run the test stages in order and print one closing summary line per stage.
# Usage: tools/run-tests.sh [lint|unit|molecule|aio] (default: all stages)
# MOLECULE_SCENARIOS="base other" limits the molecule stage.
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
export ANSIBLE_CONFIG="$PWD/ansible.cfg"
# Wide enough that molecule does not wrap the skip reasons read below.
export COLUMNS=250
mkdir -p .artifacts/logs

summary=()
passed=0
failed=0

stage() {  # stage NAME COMMAND...
  local name=$1; shift
  local log=".artifacts/logs/$name.log" start rc
  printf '\n=== %s: %s\n' "$name" "$*"
  start=$EPOCHREALTIME
  "$@" 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  local secs
  secs=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
  # A pass with skipped tests says so, with the reasons: a skip is not a pass.
  local skipped reasons
  skipped=$(sed 's/\x1b\[[0-9;]*m//g' "$log" | grep -oE '[0-9]+ skipped' | tail -n 1 | cut -d' ' -f1)
  reasons=$(sed 's/\x1b\[[0-9;]*m//g' "$log" | grep -oE 'SKIPPED \[[0-9]+\] [^ ]+: .*' | sed 's/^SKIPPED \[[0-9]*\] [^ ]*: //' | sort -u)
  if [ "$rc" -eq 0 ] && [ -n "$skipped" ]; then
    summary+=("$(printf 'PASS  %-24s %7ss  (%s skipped)' "$name" "$secs" "$skipped")")
    while IFS= read -r reason; do
      [ -n "$reason" ] && summary+=("      skipped: $reason")
    done <<<"$reasons"
    passed=$((passed + 1))
  elif [ "$rc" -eq 0 ]; then
    summary+=("$(printf 'PASS  %-24s %7ss' "$name" "$secs")")
    passed=$((passed + 1))
  else
    summary+=("$(printf 'FAIL  %-24s %7ss  (exit %s, log %s)' "$name" "$secs" "$rc" "$log")")
    failed=$((failed + 1))
  fi
}

STAGES="${1:-all}"

if [ "$STAGES" = all ] || [ "$STAGES" = lint ]; then
  stage yamllint yamllint --strict .
  # Molecule's playbooks name hosts that only molecule's inventory has;
  # our ansible.cfg makes such a pattern an error, which lint must not see.
  stage ansible-lint env ANSIBLE_HOST_PATTERN_MISMATCH=warning \
    ansible-lint --offline --profile production
  stage ruff ruff check .
  stage inventory devinfra validate
fi
if [ "$STAGES" = all ] || [ "$STAGES" = unit ]; then
  # The real Zuul's parsers check what our filters render for it.
  DEVINFRA_ZUUL_PYTHON=$(tools/zuul-venv.sh) || { echo "zuul venv failed" >&2; exit 1; }
  export DEVINFRA_ZUUL_PYTHON
  stage pytest pytest -q tests/unit
fi
if [ "$STAGES" = all ] || [ "$STAGES" = molecule ]; then
  # Once the AIO's package mirror exists, molecule's hosts install through it
  # (devinfra hosts create --mirror). DEVINFRA_MIRROR= (empty) turns it off.
  aio_mirror=devinfra-aio-mirror01
  if [ -z "${DEVINFRA_MIRROR+set}" ] &&
     docker exec "$aio_mirror" curl -fsS -o /dev/null http://127.0.0.1/debian/dists/trixie/Release 2>/dev/null; then
    export DEVINFRA_MIRROR=$aio_mirror
  fi
  echo "molecule hosts install through: ${DEVINFRA_MIRROR:-the public archives (no mirror)}"
  scenarios=${MOLECULE_SCENARIOS:-$(for f in molecule/*/molecule.yml; do basename "$(dirname "$f")"; done)}
  for s in $scenarios; do
    stage "molecule:$s" molecule test -s "$s"
  done
fi

if [ "$STAGES" = all ] || [ "$STAGES" = aio ]; then
  # The AIO's Zuul deploying commits merged into its clone of this repo
  # (tests/aio): needs a deployed AIO (make aio); skipped, saying so, if none.
  stage aio pytest -q -rs tests/aio
fi

printf '\n=== summary\n'
printf '%s\n' "${summary[@]}"
printf 'stages: %s passed, %s failed\n' "$passed" "$failed"
[ "$failed" -eq 0 ]
