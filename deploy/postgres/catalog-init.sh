#!/bin/sh
# /docker-entrypoint-initdb.d script of the catalog PostgreSQL: the `sluice` role the control plane logs in
# as. It has no password: pg_hba.conf admits it only with a client certificate whose CN is `sluice`.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres <<'SQL'
create role sluice with login;
alter database sluice owner to sluice;
SQL
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname sluice <<'SQL'
alter schema public owner to sluice;
SQL
