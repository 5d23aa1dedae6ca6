-- Failed logins per user name, shared by every control plane on this catalog, so a lockout holds whichever
-- replica an attacker reaches. Keyed by a SHA-256 of the name as typed (a mistyped name can be a password),
-- for names that exist and names that don't alike: a lockout reveals nothing about which users exist.
create table if not exists login_failures (
  name_hash text primary key,
  -- Failures since the last lockout (or success); at the configured maximum the name locks.
  failures integer not null default 0,
  -- Lockouts in a row: each lasts twice as long as the one before.
  lockouts integer not null default 0,
  locked_until timestamptz,
  last_failure_at timestamptz not null default now()
);

-- A refresh-token family (one login) ends at an absolute time, however often it is refreshed.
alter table refresh_tokens add column if not exists family_expires_at timestamptz;
