#!/bin/bash
# upstream-repo: the test's "upstream" APT repository on upstream1 (never a
# public one): tiny packages made with dpkg-deb, a repository of them made
# with reprepro and signed with a throwaway key, in /srv/upstream/debian
# (served over HTTP by upstream-http.service).
#
#   upstream-repo init                      make the key and the empty repository
#   upstream-repo add NAME VERSION [KIB]    build NAME_VERSION_all.deb (with KIB
#                                           KiB of random payload) and include it
set -euo pipefail
base=/srv/upstream/debian
export GNUPGHOME=/root/upstream-gnupg

case "${1:-}" in
  init)
    install -d -m 0700 "$GNUPGHOME"
    if ! gpg --batch --list-secret-keys 2>/dev/null | grep -q sec; then
      gpg --batch --quiet --pinentry-mode loopback --passphrase '' \
        --quick-gen-key 'devinfra test upstream <upstream@upstream1>' ed25519 sign never
    fi
    install -d "$base/conf" /srv/upstream/build
    cat > "$base/conf/distributions" <<DIST
Origin: devinfra-test-upstream
Label: devinfra-test-upstream
Codename: trixie
Components: main
Architectures: amd64
SignWith: default
DIST
    gpg --batch --armor --export > /srv/upstream/upstream.asc
    gpg --batch --with-colons --list-keys | awk -F: '$1 == "fpr" {print $10; exit}' > /srv/upstream/upstream.fpr
    reprepro -b "$base" export trixie
    ;;
  add)
    name=$2 version=$3 kib=${4:-0}
    tree=/srv/upstream/build/${name}_$version
    rm -rf "$tree"
    install -d "$tree/DEBIAN" "$tree/usr/share/$name"
    cat > "$tree/DEBIAN/control" <<CONTROL
Package: $name
Version: $version
Architecture: all
Maintainer: devinfra tests <tests@devinfra.invalid>
Section: misc
Priority: optional
Description: devinfra mirror_update test package $name
 A tiny package for the mirror_update molecule scenario.
CONTROL
    echo "$name $version" > "$tree/usr/share/$name/version"
    if [ "$kib" -gt 0 ]; then
      head -c "$((kib * 1024))" /dev/urandom > "$tree/usr/share/$name/payload"
    fi
    dpkg-deb --root-owner-group -Znone --build "$tree" "/srv/upstream/build/${name}_${version}_all.deb" >/dev/null
    reprepro -b "$base" includedeb trixie "/srv/upstream/build/${name}_${version}_all.deb"
    ;;
  *)
    echo "usage: upstream-repo init | add NAME VERSION [KIB]" >&2
    exit 2
    ;;
esac
