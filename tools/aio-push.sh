#!/usr/bin/env bash
# Merge a commit into the AIO: push it to the master branch of the AIO's
# clone of this repository (devinfra/devinfra, hosted by the AIO's Zuul on
# zuul01 and read through its git driver). That is what a Gerrit submit is
# in production: the AIO's deploy pipeline then applies what it changed.
#   tools/aio-push.sh [--force] [REV]    (REV defaults to HEAD)
# When the AIO's master has commits REV has not (the loop test's), REV is
# merged with a merge commit holding REV's tree, as Gerrit's merge strategy
# would: Zuul then deploys what REV's own commits changed. --force replaces
# the branch instead (Zuul sees no new commit, so no file: it runs every
# deploy job, as for a timer). `make aio` runs it with HEAD.
set -euo pipefail
container=${DEVINFRA_AIO_ZUUL:-devinfra-aio-zuul01}
repo=${DEVINFRA_AIO_REPO:-/var/lib/zuul/git/devinfra/devinfra}
force=false
if [ "${1:-}" = --force ]; then force=true; shift; fi
sha=$(git rev-parse --verify "${1:-HEAD}^{commit}")
# git's ext transport runs the remote end with docker exec, as the user
# owning the repository: no SSH, no daemon.
remote="ext::docker exec -i -u zuul $container %S $repo"
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
gitx push --quiet "$remote" "$($force && echo +)$push:refs/heads/master"
echo "aio-push: devinfra/devinfra master is now $push (was ${before:-absent}; merged $sha)"
if [ -z "$before" ]; then
  # Zuul's git driver records a repository's first branch without an event:
  # load the new configuration now (later pushes trigger it themselves).
  docker exec -u zuul "$container" /opt/zuul/bin/zuul-scheduler tenant-reconfigure "${DEVINFRA_AIO_TENANT:-devinfra}"
  echo "aio-push: tenant ${DEVINFRA_AIO_TENANT:-devinfra} reconfigured"
fi
