-- Replication cleanups are handed to one worker at a time: a claim that is not completed (the worker died or
-- the source was unreachable) expires and the cleanup is handed out again.
alter table job_cleanups add column if not exists claimed_by uuid;
alter table job_cleanups add column if not exists claimed_at timestamptz;
alter table job_cleanups add column if not exists attempts integer not null default 0;
alter table job_cleanups add column if not exists last_error text;
