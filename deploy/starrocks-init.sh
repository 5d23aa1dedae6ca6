#!/bin/sh
# One-shot `starrocks-init` service: gives StarRocks' root account a password (the all-in-one image starts
# with none), then creates the demo database and the `sluice` user the sink writes as. Passwords are read
# from secret files and handed to mysql in a client option file, never on a command line. Idempotent.
set -eu
umask 077
host=starrocks
port=9030
root_password=$(cat /run/secrets/starrocks_root_password)
sluice_password=$(cat /run/secrets/starrocks_password)
for value in "$root_password" "$sluice_password"; do
  case "$value" in
    "" | *\'* | *\\*)
      echo "starrocks-init: a StarRocks password is empty or contains a quote or backslash" >&2
      exit 1
      ;;
  esac
done

options=$(mktemp)
trap 'rm -f "$options"' EXIT
printf '[client]\nuser=root\npassword=%s\n' "$root_password" >"$options"

if mysql --connect-timeout 5 -h "$host" -P "$port" -uroot --password= -e 'select 1' >/dev/null 2>&1; then
  echo "starrocks-init: setting the root password"
  mysql --connect-timeout 5 -h "$host" -P "$port" -uroot --password= <<SQL
ALTER USER 'root' IDENTIFIED BY '$root_password';
SQL
fi

as_root() { mysql --defaults-extra-file="$options" --connect-timeout 5 -h "$host" -P "$port" "$@"; }

as_root <<SQL
CREATE DATABASE IF NOT EXISTS demo;
SQL
if ! as_root -N -e 'SHOW USERS' | grep -q "'sluice'@'%'"; then
  as_root <<SQL
CREATE USER 'sluice'@'%' IDENTIFIED BY '$sluice_password';
SQL
fi
as_root <<SQL
GRANT ALL ON DATABASE demo TO USER 'sluice'@'%';
GRANT ALL ON ALL TABLES IN DATABASE demo TO USER 'sluice'@'%';
SQL
echo "starrocks-init: database demo and user sluice ready"
