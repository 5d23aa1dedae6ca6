-- Connection tests of a PostgreSQL source may name tables to check as a job would replicate them (exists,
-- readable, has a primary key or a usable replica identity): `sluice datasource test --table`, and the check
-- `job create` runs on a worker before it stores a job. [{schema, name}] as the API gives them; not secret.
alter table connection_tests add column if not exists tables jsonb not null default '[]';
