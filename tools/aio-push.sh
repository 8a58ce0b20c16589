#!/usr/bin/env bash
# Merge a commit into the AIO: push it to the master branch of the AIO's
# clone of this repository (devinfra/devinfra, hosted by the AIO's Zuul on
# zuul01 and read through its git driver). That is what a Gerrit submit is
# in production: the AIO's deploy pipeline then applies what it changed.
#   tools/aio-push.sh [--force] [REV]    (REV defaults to HEAD)
# Without --force only a fast-forward is accepted. `make aio` runs it with
# HEAD, so the AIO's clone follows the checkout it was deployed from.
set -euo pipefail
container=${DEVINFRA_AIO_ZUUL:-devinfra-aio-zuul01}
repo=${DEVINFRA_AIO_REPO:-/var/lib/zuul/git/devinfra/devinfra}
plus=
if [ "${1:-}" = --force ]; then plus=+; shift; fi
sha=$(git rev-parse --verify "${1:-HEAD}^{commit}")
# git's ext transport runs the remote end with docker exec, as the user
# owning the repository: no SSH, no daemon.
remote="ext::docker exec -i -u zuul $container %S $repo"
before=$(git -c protocol.ext.allow=always ls-remote "$remote" refs/heads/master | cut -f1)
git -c protocol.ext.allow=always push --quiet "$remote" "$plus$sha:refs/heads/master"
echo "aio-push: devinfra/devinfra master is now $sha (was ${before:-absent})"
if [ -z "$before" ]; then
  # Zuul's git driver records a repository's first branch without an event:
  # load the new configuration now (later pushes trigger it themselves).
  docker exec -u zuul "$container" /opt/zuul/bin/zuul-scheduler tenant-reconfigure "${DEVINFRA_AIO_TENANT:-devinfra}"
  echo "aio-push: tenant ${DEVINFRA_AIO_TENANT:-devinfra} reconfigured"
fi
