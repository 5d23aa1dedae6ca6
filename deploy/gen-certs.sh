#!/bin/sh
# One-shot `certs` service of docker-compose.yml: a private CA for the demo and one certificate per TLS
# endpoint, each written into the volume of the only service that needs it. Runs as root in the postgres
# image (which carries openssl) with no network. Idempotent: existing files are kept, missing ones made.
#
#   /tls/ca            CA key and certificate — mounted here only, never in a running service
#   /tls/public        ca.crt — what workers and the setup service trust
#   /tls/control-plane tls.crt/tls.key (control-plane, localhost, 127.0.0.1), ca.crt, and the client
#                      certificate the control plane presents to the catalog (CN=sluice)
#   /tls/source-db     server.crt/server.key for the PostgreSQL source (source-db)
#   /tls/catalog-db    server.crt/server.key and ca.crt (to verify client certificates) for the catalog
#   /tls/setup         ca.crt and a catalog client certificate (CN=sluice) of its own for the one-shot
#                      setup, whose `sluice admin create` bootstraps the first admin in the catalog
set -eu
umask 077

tls=${1:-/tls}             # the volumes' mount points live under here
bootstrap=${2:-/bootstrap} # each worker's bootstrap token volume, if mounted here: /bootstrap/<worker>

SLUICE_UID=10001 # the image's `sluice` user (Dockerfile)
PG_UID=999       # the postgres image's `postgres` user
DAYS=397

ca="$tls/ca"
mkdir -p "$ca" "$tls/public" "$tls/control-plane" "$tls/source-db" "$tls/catalog-db" "$tls/setup"

if [ ! -s "$ca/ca.key" ] || [ ! -s "$ca/ca.crt" ]; then
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$ca/ca.key"
  openssl req -x509 -new -key "$ca/ca.key" -sha256 -days 1825 -subj "/CN=Sluice demo CA" \
    -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -out "$ca/ca.crt"
  echo "certs: new CA"
fi

# issue DIR NAME CN SAN EXTENDED_KEY_USAGE OWNER_UID
issue() {
  dir=$1 name=$2 cn=$3 san=$4 eku=$5 owner=$6
  if [ -s "$dir/$name.crt" ] && [ -s "$dir/$name.key" ] &&
    openssl verify -CAfile "$ca/ca.crt" "$dir/$name.crt" >/dev/null 2>&1 &&
    openssl x509 -in "$dir/$name.crt" -noout -checkend 2592000 >/dev/null; then
    return 0
  fi
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$dir/$name.key"
  openssl req -new -key "$dir/$name.key" -subj "/CN=$cn" -out "$dir/$name.csr"
  extensions=$(mktemp)
  {
    echo "basicConstraints=critical,CA:FALSE"
    echo "keyUsage=critical,digitalSignature"
    echo "extendedKeyUsage=$eku"
    if [ -n "$san" ]; then echo "subjectAltName=$san"; fi
  } >"$extensions"
  openssl x509 -req -in "$dir/$name.csr" -CA "$ca/ca.crt" -CAkey "$ca/ca.key" -CAcreateserial \
    -sha256 -days "$DAYS" -extfile "$extensions" -out "$dir/$name.crt"
  rm -f "$dir/$name.csr" "$extensions"
  chown "$owner:$owner" "$dir/$name.key" "$dir/$name.crt"
  chmod 0600 "$dir/$name.key"
  chmod 0644 "$dir/$name.crt"
  echo "certs: issued $dir/$name.crt for $cn"
}

issue "$tls/control-plane" tls control-plane "DNS:control-plane,DNS:localhost,IP:127.0.0.1,IP:::1" serverAuth "$SLUICE_UID"
issue "$tls/control-plane" catalog-client sluice "" clientAuth "$SLUICE_UID"
issue "$tls/setup" catalog-client sluice "" clientAuth "$SLUICE_UID"
issue "$tls/source-db" server source-db "DNS:source-db" serverAuth "$PG_UID"
issue "$tls/catalog-db" server catalog-db "DNS:catalog-db" serverAuth "$PG_UID"

for dir in "$tls/public" "$tls/control-plane" "$tls/catalog-db" "$tls/setup"; do
  cp "$ca/ca.crt" "$dir/ca.crt"
  chmod 0644 "$dir/ca.crt"
done
chmod 0755 "$tls/public" "$tls/source-db" "$tls/catalog-db" "$tls/control-plane"
chown "$SLUICE_UID:$SLUICE_UID" "$tls/control-plane" "$tls/setup"
chmod 0700 "$tls/control-plane" "$tls/setup"
chmod 0700 "$ca"

# A fresh named volume's root belongs to root; setup (the `sluice` user) writes each worker's token into
# that worker's own volume, which only that worker mounts besides.
for dir in "$bootstrap"/*/; do
  [ -d "$dir" ] || continue
  chown "$SLUICE_UID:$SLUICE_UID" "$dir"
  chmod 0700 "$dir"
done
echo "certs: ready"
