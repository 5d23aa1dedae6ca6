// PII hashing for per-job `hash_columns`: SHA-256 of the trimmed, lower-cased value, the form ad platforms
// match on, or HMAC-SHA256 under a per-job key so the hashes can't be reversed with a dictionary of e-mail
// addresses or phone numbers.
//
// How a column value becomes the string that is hashed (normalizePii):
//
//   null, undefined          → null: nothing is hashed, a NULL column stays NULL.
//   string                   → NFC-normalized, trimmed (String.prototype.trim: ASCII and Unicode white space,
//                              NBSP and U+3000 included; zero-width characters such as U+200B are not white
//                              space and stay), lower-cased with toLowerCase(), NFC-normalized again.
//                              toLowerCase() is the locale-independent Unicode mapping: "I" → "i" on every
//                              machine (never the Turkish dotless "ı"); "İ" → "i̇" (i + U+0307), so "İstanbul"
//                              and "istanbul" differ; "ΟΔΟΣ" → "οδος" (final sigma); "ß" stays "ß" and "ẞ"
//                              becomes "ß" (no case folding: "straße" ≠ "strasse"); full-width "Ａ" → "ａ"
//                              (NFC, not NFKC: compatibility forms are not merged). Unpaired surrogates become
//                              U+FFFD, as UTF-8 would encode them anyway.
//   "" or only white space   → null: an empty value carries nothing to match on, and hashing it would give
//                              every blank row the same well-known digest.
//   number                   → String(value) ("42", "1.5", "1e+21"; -0 → "0"); NaN and ±Infinity → null.
//   bigint                   → decimal digits.
//   boolean                  → "true" / "false" (hashing a boolean hides nothing; it is allowed so that a
//                              misconfigured column doesn't stop a job).
//   Date                     → ISO 8601 in UTC (toISOString); an invalid Date → null.
//   anything else            → TypeError naming the type (never the value): objects, arrays, Buffers, JSON
//                              documents have no canonical text form, so the job configuration is wrong.
import { createHash, createHmac, createSecretKey, type KeyObject } from 'node:crypto';

const MIN_HMAC_KEY_BYTES = 32;

/** The canonical text a value is hashed as, or null when there is nothing to hash (see the table above). */
export function normalizePii(value: unknown): string | null {
  switch (typeof value) {
    case 'undefined':
      return null;
    case 'string':
      return normalizeText(value);
    case 'number':
      return Number.isFinite(value) ? String(value) : null;
    case 'bigint':
      return value.toString();
    case 'boolean':
      return value ? 'true' : 'false';
    case 'object':
      if (value === null) return null;
      if (value instanceof Date) return Number.isNaN(value.getTime()) ? null : value.toISOString();
      throw new TypeError(`cannot hash a ${describeType(value)} as PII; hash_columns takes scalar columns`);
    default:
      throw new TypeError(`cannot hash a ${typeof value} as PII; hash_columns takes scalar columns`);
  }
}

/** Lower-case hex SHA-256 of the normalized value (UTF-8), or null for null/empty values. */
export function hashPii(value: unknown): string | null {
  const text = normalizePii(value);
  return text === null ? null : createHash('sha256').update(text, 'utf8').digest('hex');
}

/**
 * Lower-case hex HMAC-SHA256 of the normalized value under `key` (at least 32 bytes, e.g. a per-job random key),
 * or null for null/empty values.
 */
export function hmacPii(key: KeyObject | Uint8Array, value: unknown): string | null {
  const keyObject = toHmacKey(key);
  const text = normalizePii(value);
  return text === null ? null : createHmac('sha256', keyObject).update(text, 'utf8').digest('hex');
}

function normalizeText(value: string): string | null {
  const text = value.toWellFormed().normalize('NFC').trim().toLowerCase().normalize('NFC');
  return text === '' ? null : text;
}

function toHmacKey(key: KeyObject | Uint8Array): KeyObject {
  if (key instanceof Uint8Array) {
    if (key.byteLength < MIN_HMAC_KEY_BYTES) {
      throw new RangeError(`a PII HMAC key needs at least ${MIN_HMAC_KEY_BYTES} bytes`);
    }
    return createSecretKey(key);
  }
  if (typeof key === 'object' && key !== null && (key as KeyObject).type === 'secret') {
    if (((key as KeyObject).symmetricKeySize ?? 0) < MIN_HMAC_KEY_BYTES) {
      throw new RangeError(`a PII HMAC key needs at least ${MIN_HMAC_KEY_BYTES} bytes`);
    }
    return key as KeyObject;
  }
  throw new TypeError('a PII HMAC key is a secret KeyObject or bytes');
}

function describeType(value: object): string {
  if (Array.isArray(value)) return 'array';
  if (value instanceof Uint8Array) return 'byte array';
  const name = (value as { constructor?: { name?: unknown } }).constructor?.name;
  return typeof name === 'string' && name !== '' && name !== 'Object' ? `${name} object` : 'object';
}
