// Input checks shared by the API handlers. Each throws InvalidArgument naming the field and what is wrong;
// none echoes a secret value back (secret fields are named, never quoted).
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import { invalidArgument, notFound, truncate } from '../errors.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function isUuid(value: string): boolean {
  return UUID.test(value);
}

/** A resource id from a request: required and a UUID (anything else can't exist, so it is NotFound). */
export function requireId(kind: string, value: string, field = 'id'): string {
  if (value === '') throw invalidArgument(`${field} is required`);
  if (!isUuid(value)) throw notFound(kind, value);
  return value.toLowerCase();
}

/** Catalog names of datasources and jobs: ASCII letters, digits, `_`, `-`, `.`; 1–63 characters. */
export function requireName(field: string, value: string): string {
  if (value === '') throw invalidArgument(`${field} is required`);
  if (value.length > 63) throw invalidArgument(`${field} is longer than 63 characters`);
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(value))
    throw invalidArgument(
      `${field} ${JSON.stringify(truncate(value))} may only contain ASCII letters, digits, '_', '-' and '.', starting with a letter or digit`,
    );
  return value;
}

/** Login names: letters, digits, `_`, `-`, `.`, `@`; 1–64 characters. */
export function requireUsername(value: string): string {
  if (value === '') throw invalidArgument('username is required');
  if (value.length > 64) throw invalidArgument('username is longer than 64 characters');
  if (!/^[A-Za-z0-9_.@-]+$/.test(value))
    throw invalidArgument(
      `username ${JSON.stringify(truncate(value))} may only contain ASCII letters, digits, '_', '-', '.' and '@'`,
    );
  return value;
}

export function requirePassword(field: string, value: string): string {
  if (value.length < 12) throw invalidArgument(`${field} must be at least 12 characters`);
  if (value.length > 1024) throw invalidArgument(`${field} is longer than 1024 characters`);
  return value;
}

/** A host name (RFC 1123 labels) or an IPv4/IPv6 address. */
export function requireHost(field: string, value: string): string {
  if (value === '') throw invalidArgument(`${field} is required`);
  if (value.length > 253) throw invalidArgument(`${field} is longer than 253 characters`);
  if (isIP(value)) return value;
  const labels = value.split('.');
  const valid = labels.every((label) => /^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$/.test(label));
  if (!valid)
    throw invalidArgument(
      `${field} ${JSON.stringify(truncate(value))} is not a valid host name or IP address`,
    );
  return value;
}

export function requirePort(field: string, value: number, fallback: number): number {
  if (value === 0) return fallback;
  if (!Number.isInteger(value) || value < 1 || value > 65535)
    throw invalidArgument(`${field} ${value} is out of range 1–65535`);
  return value;
}

/**
 * PostgreSQL identifiers as the server spells them (database, role, schema, table, column names): 1–63 bytes,
 * no control, format or other invisible characters (which can disguise one name as another), no NUL.
 */
export function requireIdentifier(field: string, value: string): string {
  if (value === '') throw invalidArgument(`${field} is required`);
  if (Buffer.byteLength(value, 'utf8') > 63) throw invalidArgument(`${field} is longer than 63 bytes`);
  if (/[\p{C}]/u.test(value)) throw invalidArgument(`${field} contains a control or invisible character`);
  if (value !== value.normalize('NFC')) throw invalidArgument(`${field} is not in Unicode normal form C`);
  if (value.includes('"')) throw invalidArgument(`${field} contains a double quote`);
  return value;
}

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----[\s\S]+?-----END \1-----/g;
const MAX_PEM = 64 * 1024;

/** One or more PEM certificates (a chain or a CA bundle), each of which must parse. */
export function requireCertificatePem(field: string, value: string): string {
  if (value.length > MAX_PEM) throw invalidArgument(`${field} is larger than 64 KiB`);
  const blocks = value.match(PEM_BLOCK) ?? [];
  if (blocks.length === 0) throw invalidArgument(`${field} is not a PEM certificate`);
  for (const block of blocks) {
    if (!block.startsWith('-----BEGIN CERTIFICATE-----'))
      throw invalidArgument(`${field} contains a PEM block that is not a certificate`);
    try {
      new X509Certificate(block);
    } catch {
      throw invalidArgument(`${field} contains a certificate that does not parse`);
    }
  }
  return value;
}

/** A PEM private key (PKCS#8, PKCS#1 or SEC1), unencrypted, since the worker has no passphrase for it. */
export function requirePrivateKeyPem(field: string, value: string): string {
  if (value.length > MAX_PEM) throw invalidArgument(`${field} is larger than 64 KiB`);
  if (!/-----BEGIN (RSA |EC )?PRIVATE KEY-----/.test(value)) {
    if (value.includes('ENCRYPTED PRIVATE KEY'))
      throw invalidArgument(`${field} is encrypted; store the key without a passphrase`);
    throw invalidArgument(`${field} is not a PEM private key`);
  }
  try {
    createPrivateKey({ key: value, format: 'pem' });
  } catch {
    throw invalidArgument(`${field} does not parse as a private key`);
  }
  return value;
}

export function requireMaxLength(field: string, value: string, max: number): string {
  if (value.length > max) throw invalidArgument(`${field} is longer than ${max} characters`);
  return value;
}

/** Worker and token labels: at most 32, keys like Kubernetes label names, short values. */
export function requireLabels(field: string, labels: Record<string, string>): Record<string, string> {
  const entries = Object.entries(labels);
  if (entries.length > 32) throw invalidArgument(`${field} has more than 32 entries`);
  for (const [key, value] of entries) {
    if (!/^[A-Za-z0-9]([A-Za-z0-9_./-]{0,61}[A-Za-z0-9])?$/.test(key))
      throw invalidArgument(`${field} key ${JSON.stringify(truncate(key))} is not a valid label name`);
    if (value.length > 63 || /[\p{C}]/u.test(value))
      throw invalidArgument(
        `${field} value of ${JSON.stringify(key)} is longer than 63 characters or not printable`,
      );
  }
  return labels;
}
