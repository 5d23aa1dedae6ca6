-- Wakes long-polling workers on every control plane sharing this catalog when work may have appeared: a job
-- became pending or lost its lease, or a connection test or a cleanup was requested. Every notification wakes
-- every waiting poll, so only these rare events notify — not worker heartbeats or state changes (a draining
-- worker's own poll is woken in-process). Notifications are delivered at commit and de-duplicated within a
-- transaction. Expired leases emit nothing: the pollers' slow fallback catches those.
create or replace function sluice_notify_work() returns trigger
language plpgsql as $$
begin
  perform pg_notify('sluice_work', '');
  return null;
end;
$$;

drop trigger if exists jobs_notify_work on jobs;
create trigger jobs_notify_work after insert or update on jobs
  for each row when (new.state = 'pending' or new.lease_worker_id is null)
  execute function sluice_notify_work();

drop trigger if exists connection_tests_notify_work on connection_tests;
create trigger connection_tests_notify_work after insert on connection_tests
  for each row execute function sluice_notify_work();

drop trigger if exists job_cleanups_notify_work on job_cleanups;
create trigger job_cleanups_notify_work after insert on job_cleanups
  for each row execute function sluice_notify_work();
