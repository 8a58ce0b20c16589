#!/bin/bash
# A throwaway certificate authority for the postgresql scenario, standing in
# for the pki role: its files land where the pki role would put them, with
# the key owned root:devinfra-tls mode 0640.
#
#   test-ca.sh init         make the CA (once) in $CA_DIR
#   test-ca.sh issue NAME   issue a new certificate for NAME (new serial,
#                           same key) into $CA_DIR/NAME.crt; the key is made
#                           once, as $CA_DIR/NAME.key
set -euo pipefail
CA_DIR=${CA_DIR:-/etc/devinfra-test-ca}
umask 077
mkdir -p "$CA_DIR"
cd "$CA_DIR"

case $1 in
  init)
    if [ ! -f ca.crt ]; then
      openssl req -x509 -new -noenc -newkey ec -pkeyopt ec_paramgen_curve:P-256 -days 30 \
        -subj "/CN=devinfra molecule test CA" -keyout ca.key -out ca.crt 2>/dev/null
      chmod 0644 ca.crt
    fi
    ;;
  issue)
    name=$2
    if [ ! -f "$name.key" ]; then
      openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$name.key"
    fi
    openssl req -new -key "$name.key" -subj "/CN=$name" -out "$name.csr"
    printf 'subjectAltName=DNS:%s\nextendedKeyUsage=serverAuth\n' "$name" > "$name.ext"
    openssl x509 -req -in "$name.csr" -CA ca.crt -CAkey ca.key -set_serial "0x$(openssl rand -hex 16)" \
      -days 30 -extfile "$name.ext" -out "$name.crt.new" 2>/dev/null
    chmod 0644 "$name.crt.new"
    mv "$name.crt.new" "$name.crt"
    openssl x509 -in "$name.crt" -noout -serial
    ;;
  *)
    echo "usage: $0 init | issue NAME" >&2
    exit 2
    ;;
esac
