#!/bin/sh
# Creates the secret files docker-compose.yml mounts (compose `secrets:`), one random value per file:
# `openssl rand -hex 32` (256 bits; CONFIG_ENCRYPTION_KEY must be exactly 64 hex characters). Existing
# files are kept, so running it again never rotates a key by accident.
#
# The directory is 0700, so only you can reach the files on the host. The files themselves are 0644
# because plain docker compose bind-mounts secrets with their host mode and owner (`uid`/`mode` apply to
# Swarm only): the containers run as other users (10001, 999) and must be able to read them.
set -eu
dir=${1:-"$(dirname "$0")/secrets"}
mkdir -p "$dir"
chmod 0700 "$dir"
for name in config_encryption_key jwt_secret admin_password catalog_db_password \
  source_db_superuser_password source_db_password starrocks_root_password starrocks_password; do
  file="$dir/$name"
  if [ -s "$file" ]; then
    echo "kept    $file"
    continue
  fi
  (umask 077 && openssl rand -hex 32 >"$file.tmp")
  chmod 0644 "$file.tmp"
  mv "$file.tmp" "$file"
  echo "created $file"
done
