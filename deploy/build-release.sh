#!/bin/sh
# Builds the worker release the Terraform module installs: the image's Node 24 and /app (sources and
# production dependencies) in a .tar.gz, plus its SHA-256 for the module's release_sha256.
#
#   deploy/build-release.sh [VERSION]   → deploy/dist/sluice-worker-VERSION-linux-x64.tar.gz and .sha256
#
# Layout: bin/node, bin/sluice (the entry point the systemd unit runs), app/ (the repository's runtime files).
set -eu
cd "$(dirname "$0")/.."
version=${1:-$(node -p 'require("./package.json").version')}
image="sluice:release-$version"
out="deploy/dist/sluice-worker-$version-linux-x64.tar.gz"

docker build --tag "$image" .
staging=$(mktemp -d)
container=$(docker create "$image")
trap 'docker rm -f "$container" >/dev/null 2>&1 || true; rm -rf "$staging"' EXIT
mkdir -p "$staging/bin"
docker cp "$container:/app" "$staging/app"
docker cp -L "$container:/usr/local/bin/node" "$staging/bin/node"
cat >"$staging/bin/sluice" <<'SH'
#!/bin/sh
# The `sluice` command of a worker release: its own Node 24 runs the TypeScript entry point directly.
set -eu
# shellcheck disable=SC3045 # dash and bash both have ulimit -c
ulimit -c 0
case "${NODE_OPTIONS:-}" in
  *--tls-keylog*)
    echo "sluice: refusing to start with --tls-keylog in NODE_OPTIONS" >&2
    exit 64
    ;;
esac
release=$(dirname "$(dirname "$(readlink -f "$0")")")
exec "$release/bin/node" "$release/app/packages/cli/main.ts" "$@"
SH
chmod 0755 "$staging/bin/sluice" "$staging/bin/node"

mkdir -p deploy/dist
printf '*\n' >deploy/dist/.gitignore
tar -czf "$out" -C "$staging" --owner=0 --group=0 --numeric-owner bin app
(cd deploy/dist && sha256sum "$(basename "$out")" >"$(basename "$out").sha256")
echo "release: $out"
echo "release_sha256 = \"$(cut -d' ' -f1 "$out.sha256")\""
