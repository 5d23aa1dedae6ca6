// Every column of the catalog that holds a secret, and the one way they are encrypted: the keyring's
// AES-256-GCM with the record's identity (table, row id, field) as AAD, so a ciphertext copied to another
// row or column fails to decrypt.
import type { Keyring, RecordIdentity } from '@sluice/crypto';

export interface SecretColumn {
  table: string;
  /** The column holding the row id used in the AAD. */
  idColumn: string;
  /** The bytea column. */
  column: string;
  /** The field name used in the AAD. */
  field: string;
}

export const SECRET_COLUMNS: readonly SecretColumn[] = [
  { table: 'datasources', idColumn: 'id', column: 'password_ciphertext', field: 'password' },
  { table: 'datasources', idColumn: 'id', column: 'ssl_root_cert_ciphertext', field: 'ssl_root_cert' },
  { table: 'datasources', idColumn: 'id', column: 'ssl_client_cert_ciphertext', field: 'ssl_client_cert' },
  { table: 'datasources', idColumn: 'id', column: 'ssl_client_key_ciphertext', field: 'ssl_client_key' },
  { table: 'datasources', idColumn: 'id', column: 'ca_cert_ciphertext', field: 'ca_cert' },
  { table: 'jobs', idColumn: 'id', column: 'pii_hmac_key_ciphertext', field: 'pii_hmac_key' },
  { table: 'internal_ca', idColumn: 'id', column: 'key_ciphertext', field: 'key' },
];

function secretIdentity(table: string, rowId: string | number, field: string): RecordIdentity {
  return { table, rowId: String(rowId), field };
}

/** Encrypts a secret field value for one row. */
export function encryptField(
  keyring: Keyring,
  table: string,
  rowId: string | number,
  field: string,
  plaintext: string | Uint8Array,
): Buffer {
  return keyring.encrypt(plaintext, secretIdentity(table, rowId, field));
}

/** Decrypts a secret field value of one row; the caller wipes the result when done. */
export function decryptField(
  keyring: Keyring,
  table: string,
  rowId: string | number,
  field: string,
  ciphertext: Uint8Array,
): Buffer {
  return keyring.decrypt(ciphertext, secretIdentity(table, rowId, field));
}
