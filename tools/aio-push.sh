#!/usr/bin/env bash
# Seed the AIO's review server with a commit: push it to the master branch
# of this repository's project on review01's Pagure (devinfra/system-config),
# straight into the repository as Pagure's own user, as a server-side
# import would. Reviewed changes go through pull requests instead (README:
# the contributor's walk-through); this push bypasses review, so the AIO's
# deploy pipeline (merged pull requests only) does not run for it.
#   tools/aio-push.sh [--force] [REV]    (REV defaults to HEAD)
# When the AIO's master has commits REV has not, REV is merged with a merge
# commit holding REV's tree. --force replaces the branch. `make aio` runs it
# with HEAD.
set -euo pipefail
container=${DEVINFRA_AIO_REVIEW:-devinfra-aio-review01}
project=${DEVINFRA_AIO_PROJECT:-devinfra/system-config}
repo=/var/lib/pagure/repositories/$project.git
zuul=${DEVINFRA_AIO_ZUUL:-devinfra-aio-zuul01}
force=false
if [ "${1:-}" = --force ]; then force=true; shift; fi
sha=$(git rev-parse --verify "${1:-HEAD}^{commit}")
# git's ext transport runs the remote end with docker exec, as the user
# owning the repository: no SSH key, no daemon. Pagure's own hooks still
# run and check the pusher (GL_USER): the project's owner, the AIO admin.
remote="ext::docker exec -i -u _pagure -w /var/lib/pagure -e GL_USER=${DEVINFRA_AIO_PUSHER:-admin} $container %S $repo"
gitx() { git -c protocol.ext.allow=always "$@"; }
before=$(gitx ls-remote "$remote" refs/heads/master | cut -f1)
push=$sha
if [ -n "$before" ] && ! $force; then
  gitx fetch --quiet "$remote" master
  if ! git merge-base --is-ancestor "$before" "$sha"; then
    push=$(git -c user.name="devinfra aio-push" -c user.email=aio-push@devinfra.invalid \
      commit-tree "$sha^{tree}" -p "$before" -p "$sha" -m "Merge $(git log -1 --format=%h "$sha") into the AIO")
  fi
fi
# Pagure's hooks are chatty (SQLAlchemy warnings): show them only on failure.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! gitx push --quiet "$remote" "$($force && echo +)$push:refs/heads/master" 2>"$log"; then
  grep -v -e SAWarning -e 'query = session' "$log" >&2
  exit 1
fi
echo "aio-push: $project master on review01 is now $push (was ${before:-absent}; merged $sha)"
# A push straight into the repository sends Zuul no event: load the new
# configuration now.
docker exec -u zuul "$zuul" /opt/zuul/bin/zuul-scheduler tenant-reconfigure "${DEVINFRA_AIO_TENANT:-devinfra}"
echo "aio-push: tenant ${DEVINFRA_AIO_TENANT:-devinfra} reconfigured"
