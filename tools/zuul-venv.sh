#!/usr/bin/env bash
# A virtualenv with the Zuul release the zuul role deploys, for the unit
# tests that check rendered configuration with Zuul's own parsers
# (tests/unit/test_zuul_launcher.py). Cached in .cache/zuul-venv-<version>;
# prints the path of its python.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
version=$(sed -n 's/^zuul_version: "\(.*\)"$/\1/p' "$here/roles/zuul/defaults/main.yaml")
[ -n "$version" ] || { echo "zuul-venv: no zuul_version in roles/zuul/defaults/main.yaml" >&2; exit 1; }
venv="$here/.cache/zuul-venv-$version"
if [ ! -x "$venv/bin/zuul-admin" ]; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "zuul==$version" >"$venv.log" 2>&1 || { tail -n 20 "$venv.log" >&2; exit 1; }
fi
echo "$venv/bin/python"
