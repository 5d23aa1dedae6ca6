-- A datasource's password is encrypted with a digest of its connection target (host, port, database, user,
-- TLS settings, CA) in the AAD, so a row whose target is changed outside the API no longer decrypts.
-- password_aad says which AAD the stored password ciphertext uses: 1 = the record identity only (written
-- before this migration), 2 = identity + target digest. Existing rows start at 1 and are re-encrypted to 2
-- when a control plane starts (and by `sluice keys rotate`); new rows are written at 2.
alter table datasources add column if not exists password_aad smallint not null default 1
  check (password_aad in (1, 2));
alter table datasources alter column password_aad set default 2;
