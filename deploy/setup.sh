#!/bin/sh
# One-shot `setup` service of docker-compose.yml, run in the Sluice image with the `sluice` CLI:
#   first run  — the admin user, the two datasources (PostgreSQL source over verify-full TLS, StarRocks sink)
#                and a started demo job;
#   every run  — one fresh bootstrap token per worker named on the command line, written to
#                $STATE/<worker>/token (single use, short TTL; a worker that already registered keeps its
#                identity in its state volume and ignores it). $STATE/<worker> must be that worker's own
#                volume, mounted nowhere else but in that worker (at /var/lib/sluice/bootstrap): a worker
#                that could read another's token could register as it.
# Completion: $STATE/setup.done exists (the service's healthcheck), and the container exits 0 (workers
# depend on it with `service_completed_successfully`).
# Passwords are read by the CLI from secret files; none is ever an argument or an environment variable.
set -eu
umask 077

CONTROL_PLANE=https://control-plane:8443
CA_FILE=/etc/sluice/tls/ca.crt
STATE=/var/lib/sluice/bootstrap
ADMIN='admin'

if [ "$#" -eq 0 ]; then
  echo "usage: setup.sh WORKER..." >&2
  exit 64
fi

cli() {
  sluice "$@" --control-plane "$CONTROL_PLANE" --ca-file "$CA_FILE"
}

rm -f "$STATE/setup.done"

if [ ! -f "$STATE/catalog.done" ]; then
  echo "setup: creating the admin user"
  cli admin create --username "$ADMIN" --password-file /run/secrets/admin_password
fi

cli login --username "$ADMIN" --password-file /run/secrets/admin_password

if [ ! -f "$STATE/catalog.done" ]; then
  echo "setup: adding datasources and the demo job"
  cli datasource add postgres --name demo-source \
    --host source-db --port 5432 --database app \
    --username sluice_repl --password-file /run/secrets/source_db_password \
    --ssl-mode verify-full --ssl-root-cert "$CA_FILE"
  cli datasource add starrocks --name demo-warehouse \
    --fe-host starrocks --http-port 8030 --mysql-port 9030 \
    --username sluice --password-file /run/secrets/starrocks_password --database demo
  cli job create --name demo --source demo-source --sink demo-warehouse \
    --table public.customers --table public.orders --start
  : >"$STATE/catalog.done"
fi

for worker in "$@"; do
  case "$worker" in
    *[!a-z0-9-]* | "")
      echo "setup: worker names are lowercase letters, digits and dashes: $worker" >&2
      exit 64
      ;;
  esac
  tokens="$STATE/$worker"
  if [ ! -d "$tokens" ] || [ ! -w "$tokens" ]; then
    echo "setup: no writable token volume for $worker at $tokens; mount that worker's own volume there" >&2
    exit 1
  fi
  # The token goes from the CLI's JSON straight into its file; it is never printed.
  # shellcheck disable=SC2016 # JavaScript, not shell
  cli token create --ttl 15m --json | node -e '
    let input = "";
    process.stdin.on("data", (chunk) => { input += chunk; });
    process.stdin.on("end", () => {
      const answer = JSON.parse(input);
      // CreateBootstrapTokenResponse carries the value as `secret` (and the record as `token`).
      const token = [answer.secret, answer.token].find((value) => typeof value === "string" && value !== "");
      if (token === undefined) {
        console.error(`setup: no token in the answer of "sluice token create --json" (keys: ${Object.keys(answer).join(", ")})`);
        process.exit(1);
      }
      process.stdout.write(token);
    });
  ' >"$tokens/token.new"
  mv "$tokens/token.new" "$tokens/token"
  echo "setup: bootstrap token for $worker written"
done

: >"$STATE/setup.done"
echo "setup: done"
