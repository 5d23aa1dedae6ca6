#!/bin/sh
# /docker-entrypoint-initdb.d script of the PostgreSQL source (runs once, on an empty data directory):
# the role Sluice replicates as, and two demo tables it owns (CREATE PUBLICATION needs ownership).
# The role's password comes from the source_db_password secret, never from the environment.
set -eu
password=$(cat /run/secrets/source_db_password)
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -v password="$password" -v dbname="$POSTGRES_DB" <<'SQL'
create role sluice_repl with login replication password :'password';
grant create on database :"dbname" to sluice_repl;

create table public.customers (
  id bigint generated always as identity primary key,
  email text not null,
  name text not null,
  created_at timestamptz not null default now()
);
create table public.orders (
  id bigint generated always as identity primary key,
  customer_id bigint not null references public.customers (id),
  amount numeric(12, 2) not null,
  status text not null default 'new',
  created_at timestamptz not null default now()
);
insert into public.customers (email, name)
select format('customer%s@example.com', n), format('Customer %s', n) from generate_series(1, 100) n;
insert into public.orders (customer_id, amount, status)
select 1 + (n % 100), round((random() * 500)::numeric, 2), (array['new', 'paid', 'shipped'])[1 + n % 3]
from generate_series(1, 1000) n;

alter table public.customers owner to sluice_repl;
alter table public.orders owner to sluice_repl;
SQL
