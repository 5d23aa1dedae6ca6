-- The control plane's catalog. Secret values live only in `*_ciphertext` bytea columns, encrypted by the
-- keyring with the AAD (table, row id, field); the field names are listed in catalog/secret-columns.ts.

create table if not exists users (
  id uuid primary key,
  username text not null unique,
  -- scrypt$N$r$p$salt$hash, never the password.
  password_hash text not null,
  role text not null check (role in ('admin', 'operator', 'viewer')),
  disabled boolean not null default false,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

-- Rotating refresh tokens: only a SHA-256 of the opaque value is kept. A token is spent once (used_at);
-- presenting a spent one revokes every token of its family.
create table if not exists refresh_tokens (
  id uuid primary key,
  family_id uuid not null,
  user_id uuid not null references users (id) on delete cascade,
  token_hash text not null unique,
  expires_at timestamptz not null,
  used_at timestamptz,
  revoked_at timestamptz,
  created_at timestamptz not null default now()
);
create index if not exists refresh_tokens_family on refresh_tokens (family_id);

create table if not exists datasources (
  id uuid primary key,
  name text not null unique,
  kind text not null check (kind in ('postgres', 'starrocks')),
  -- Non-secret configuration (host, ports, user name, TLS mode and flags).
  config jsonb not null,
  password_ciphertext bytea,
  ssl_root_cert_ciphertext bytea,
  ssl_client_cert_ciphertext bytea,
  ssl_client_key_ciphertext bytea,
  ca_cert_ciphertext bytea,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

create table if not exists workers (
  id uuid primary key,
  hostname text not null,
  version text not null,
  labels jsonb not null default '{}',
  state text not null default 'active' check (state in ('active', 'draining', 'offline', 'revoked')),
  agent_state text not null default 'initialized',
  -- The X25519 key credential envelopes are sealed to; replaced when the worker process restarts.
  envelope_public_key bytea,
  cert_serial text,
  cert_expires_at timestamptz,
  bootstrap_token_id uuid,
  registered_at timestamptz not null default now(),
  last_heartbeat_at timestamptz,
  revoked_at timestamptz
);

create table if not exists jobs (
  id uuid primary key,
  name text not null unique,
  source_id uuid not null references datasources (id),
  sink_id uuid not null references datasources (id),
  -- [{schema, name}] as the API gives them; not secret.
  tables jsonb not null,
  -- JobOptions in proto JSON form, defaults resolved.
  options jsonb not null,
  state text not null check (state in ('created', 'pending', 'running', 'paused', 'failed', 'stopped')),
  phase text not null default 'unspecified' check (phase in ('unspecified', 'snapshot', 'streaming')),
  -- The lease: one worker at a time, fenced by an epoch that grows on every grant.
  lease_worker_id uuid references workers (id),
  lease_epoch bigint not null default 0,
  lease_expires_at timestamptz,
  -- JobCheckpoint in proto JSON form; only moves forward.
  checkpoint jsonb,
  -- The rest of JobStatus as last reported (tables, lag, rates), proto JSON form.
  status jsonb not null default '{}',
  last_error jsonb,
  reported_at timestamptz,
  -- HMAC-SHA256 key for keyed PII hashing, when options.keyedHashing.
  pii_hmac_key_ciphertext bytea,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create index if not exists jobs_state on jobs (state);
create index if not exists jobs_lease_worker on jobs (lease_worker_id);

-- Replication slots and publications to drop after a job was deleted with cleanup; a worker does it.
create table if not exists job_cleanups (
  job_id uuid primary key,
  source_id uuid not null references datasources (id),
  slot_name text not null,
  publication_name text not null,
  requested_at timestamptz not null default now(),
  done_at timestamptz
);

create table if not exists bootstrap_tokens (
  id uuid primary key,
  -- SHA-256 of the token value; the value itself is shown once at creation.
  token_hash text not null unique,
  description text not null default '',
  labels jsonb not null default '{}',
  expires_at timestamptz not null,
  used_at timestamptz,
  used_by_worker_id uuid,
  revoked_at timestamptz,
  created_by uuid,
  created_at timestamptz not null default now()
);

-- Connection tests requested through the admin API and run by a worker.
create table if not exists connection_tests (
  id uuid primary key,
  datasource_id uuid not null references datasources (id) on delete cascade,
  state text not null default 'pending' check (state in ('pending', 'assigned', 'done')),
  worker_id uuid,
  ok boolean,
  message text,
  server_version text,
  latency_ms integer,
  created_at timestamptz not null default now(),
  expires_at timestamptz not null,
  completed_at timestamptz
);

-- The internal CA that issues worker client certificates; its private key is encrypted like any secret.
create table if not exists internal_ca (
  id integer primary key check (id = 1),
  trust_domain text not null,
  cert_pem text not null,
  key_ciphertext bytea not null,
  created_at timestamptz not null default now()
);

-- Append-only, hash-chained: hash = sha256(prev_hash || canonical fields). Appends serialise on an advisory
-- lock so concurrent writers still form one chain.
create table if not exists audit_events (
  seq bigint primary key,
  ts timestamptz not null,
  action text not null,
  user_id text not null default '',
  worker_id text not null default '',
  resource_id text not null default '',
  ip_address text not null default '',
  outcome text not null check (outcome in ('success', 'denied', 'error')),
  prev_hash text not null,
  hash text not null
);
create index if not exists audit_events_ts on audit_events (ts);

create or replace function audit_events_append_only() returns trigger
language plpgsql as $$
begin
  raise exception 'audit_events is append-only';
end;
$$;

drop trigger if exists audit_events_append_only on audit_events;
create trigger audit_events_append_only before update or delete on audit_events
  for each row execute function audit_events_append_only();
