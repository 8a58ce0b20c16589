#!/bin/sh
# Commit what changed in a hosted repository's work tree and push it to the
# bare repository Zuul reads. Prints "published" when it pushed, "unchanged"
# otherwise. Usage: publish-repo.sh WORKTREE MESSAGE
set -eu
cd "$1"
git config user.name "devinfra deploy"
git config user.email "deploy@devinfra.invalid"
git add --all
if ! git rev-parse --quiet --verify HEAD >/dev/null || ! git diff --cached --quiet; then
  git commit --quiet --allow-empty --message "$2"
fi
if [ "$(git rev-parse HEAD)" != "$(git rev-parse --quiet --verify origin/master || true)" ]; then
  git push --quiet origin HEAD:master
  git --git-dir="$(git config remote.origin.url)" update-server-info
  echo published
else
  echo unchanged
fi
