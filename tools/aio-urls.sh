#!/usr/bin/env bash
# Print how to reach each web UI of the AIO from this machine, and the CA
# that a browser or curl must trust. `make aio` ends with it.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
ca="$here/.cache/aio/ca/ca.crt"
ip() { docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "devinfra-aio-$1" 2>/dev/null || true; }
printf '\nThe AIO, from this machine (names resolve inside the AIO only: map them in /etc/hosts,\nor use curl --resolve NAME:443:ADDRESS). Trust the AIO CA: %s\n\n' "$ca"
printf '  %-28s %-42s %s\n' "service" "URL" "address"
while read -r what host url; do
  address=$(ip "$host")
  printf '  %-28s %-42s %s\n' "${what//-/ }" "$url" "${address:-(container not running)}"
done <<'LIST'
Zuul-(web-UI,-API) zuul01 https://zuul01.devinfra.test/t/devinfra/
Zuul's-build-logs zuul01 https://logs.zuul01/
Review-server-(Pagure) review01 https://review01/
Etherpad etherpad01 https://etherpad01/
Package-mirror-(HTTP) mirror01 http://mirror01/
LIST
printf '\n  git over SSH: ssh://_pagure@review01:2222/devinfra/system-config.git (keys: .cache/aio/alice_ed25519, bob_ed25519)\n'
printf '  example: curl --cacert %s --resolve review01:443:%s https://review01/api/0/version\n\n' "$ca" "$(ip review01)"
