// The at-rest keyring: AES-256-GCM under CONFIG_ENCRYPTION_KEY, with older keys kept for decryption while a
// rotation re-encrypts the catalog. Stored layout (all of the header is authenticated):
//
//   version(1) = 1 | keyId(4) | aadDigest(8) | iv(12) | ciphertext | tag(16)
//
// The GCM AAD is the header followed by the record identity, so a ciphertext moved to another row, table or
// field fails to open. aadDigest (SHA-256 of the identity, truncated) exists only to tell "wrong record"
// apart from "tampered"; GCM is what enforces both. IVs are random: rotate the key well before 2^32
// encryptions (NIST SP 800-38D), which a configuration catalog never approaches.
import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createHmac,
  createSecretKey,
  type KeyObject,
  randomBytes,
  timingSafeEqual,
} from 'node:crypto';
import { readFileSync } from 'node:fs';
import { wipe } from './secret.ts';

/** Where a stored secret lives; it is the AAD, so a ciphertext only opens for the record it was written for. */
export interface RecordIdentity {
  table: string;
  rowId: string;
  field: string;
}

export type KeyringErrorCode =
  | 'KEY_MISSING'
  | 'KEY_CONFLICT'
  | 'KEY_LENGTH'
  | 'KEY_NOT_HEX'
  | 'KEY_FILE_UNREADABLE'
  | 'UNKNOWN_KEY_ID'
  | 'MALFORMED_CIPHERTEXT'
  | 'UNSUPPORTED_VERSION'
  | 'AAD_MISMATCH'
  | 'TAMPERED';

/** Every keyring failure. Messages name the setting or the record, never key material or plaintext. */
export class KeyringError extends Error {
  readonly code: KeyringErrorCode;

  constructor(code: KeyringErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'KeyringError';
    this.code = code;
  }
}

export interface Keyring {
  /** Id of the key new encryptions use: 8 hex chars derived from the key itself, so it can't be misconfigured. */
  readonly currentKeyId: string;
  /** Every key id this keyring can decrypt, the current one first. */
  readonly keyIds: readonly string[];
  encrypt(plaintext: Uint8Array | string, aad: RecordIdentity): Buffer;
  /** The plaintext in a fresh Buffer; the caller wipes it after use. */
  decrypt(ciphertext: Uint8Array, aad: RecordIdentity): Buffer;
  /** The key id a stored ciphertext was written under (to find what a rotation still has to re-encrypt). */
  keyIdOf(ciphertext: Uint8Array): string;
}

const VERSION = 1;
const KEY_BYTES = 32;
const KEY_HEX_CHARS = KEY_BYTES * 2;
const KEY_ID_BYTES = 4;
const AAD_DIGEST_BYTES = 8;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const HEADER_BYTES = 1 + KEY_ID_BYTES + AAD_DIGEST_BYTES;
const MIN_CIPHERTEXT_BYTES = HEADER_BYTES + IV_BYTES + TAG_BYTES;
const KEY_ID_LABEL = 'sluice key id';
const AAD_LABEL = 'sluice.keyring.v1';

const CURRENT_KEY = 'CONFIG_ENCRYPTION_KEY';
const CURRENT_KEY_FILE = 'CONFIG_ENCRYPTION_KEY_FILE';
const PREVIOUS_KEYS = 'CONFIG_ENCRYPTION_PREVIOUS_KEYS';
const PREVIOUS_KEYS_FILE = 'CONFIG_ENCRYPTION_PREVIOUS_KEYS_FILE';

/**
 * Builds the keyring from the environment: exactly one of CONFIG_ENCRYPTION_KEY (64 hex characters) or
 * CONFIG_ENCRYPTION_KEY_FILE (a file holding them; surrounding whitespace ignored), plus optionally
 * CONFIG_ENCRYPTION_PREVIOUS_KEYS or CONFIG_ENCRYPTION_PREVIOUS_KEYS_FILE (keys separated by commas,
 * whitespace or newlines) that still decrypt. Empty variables count as unset. Prefer the _FILE variants: an
 * environment variable stays readable in /proc/<pid>/environ and is inherited by child processes.
 */
export function loadKeyring(env: NodeJS.ProcessEnv = process.env): Keyring {
  const current = readSetting(env, CURRENT_KEY, CURRENT_KEY_FILE);
  if (current === undefined) {
    throw new KeyringError(
      'KEY_MISSING',
      `no encryption key: set ${CURRENT_KEY} (64 hex characters, e.g. from \`openssl rand -hex 32\`) or ${CURRENT_KEY_FILE}`,
    );
  }
  let previous: { bytes: Buffer; source: string } | undefined;
  try {
    previous = readSetting(env, PREVIOUS_KEYS, PREVIOUS_KEYS_FILE);
    const currentKey = decodeKey(current.bytes, current.source);
    const previousKeys = previous === undefined ? [] : splitKeys(previous.bytes, previous.source);
    return new AesGcmKeyring(currentKey, previousKeys);
  } finally {
    wipe(current.bytes, previous?.bytes);
  }
}

/** A keyring from hex keys given directly (tests, the CLI's rotate command). */
export function createKeyring(currentKeyHex: string, previousKeysHex: readonly string[] = []): Keyring {
  const temporaries: Buffer[] = [];
  const decode = (hex: string, source: string): KeyObject => {
    if (typeof hex !== 'string') throw new KeyringError('KEY_MISSING', `${source} is not a string`);
    const bytes = Buffer.from(hex, 'utf8');
    temporaries.push(bytes);
    return decodeKey(bytes, source);
  };
  try {
    const current = decode(currentKeyHex, 'the current key');
    const previous = previousKeysHex.map((hex, index) => decode(hex, `previous key #${index + 1}`));
    return new AesGcmKeyring(current, previous);
  } finally {
    wipe(...temporaries);
  }
}

/** A fresh 256-bit key as 64 lower-case hex characters, for CONFIG_ENCRYPTION_KEY. */
export function generateEncryptionKey(): string {
  const bytes = randomBytes(KEY_BYTES);
  try {
    return bytes.toString('hex');
  } finally {
    wipe(bytes);
  }
}

class AesGcmKeyring implements Keyring {
  readonly currentKeyId: string;
  readonly keyIds: readonly string[];
  readonly #current: KeyObject;
  readonly #currentIdBytes: Buffer;
  readonly #keys = new Map<string, KeyObject>();

  constructor(current: KeyObject, previous: readonly KeyObject[]) {
    this.#current = current;
    this.#currentIdBytes = keyIdBytes(current);
    this.currentKeyId = this.#currentIdBytes.toString('hex');
    this.#keys.set(this.currentKeyId, current);
    for (const key of previous) {
      const id = keyIdBytes(key).toString('hex');
      const known = this.#keys.get(id);
      // The same key listed twice (current also among the previous ones) is harmless; two different keys
      // with one id would make decryption ambiguous.
      if (known !== undefined && !known.equals(key)) {
        throw new KeyringError('KEY_CONFLICT', `two different keys share the key id ${id}; drop one of them`);
      }
      this.#keys.set(id, key);
    }
    this.keyIds = Object.freeze([...this.#keys.keys()]);
  }

  encrypt(plaintext: Uint8Array | string, aad: RecordIdentity): Buffer {
    const identity = encodeIdentity(aad);
    const header = Buffer.alloc(HEADER_BYTES);
    header[0] = VERSION;
    this.#currentIdBytes.copy(header, 1);
    aadDigest(identity).copy(header, 1 + KEY_ID_BYTES);
    const iv = randomBytes(IV_BYTES);
    const data = typeof plaintext === 'string' ? Buffer.from(plaintext, 'utf8') : plaintext;
    try {
      const { ciphertext, tag } = aesGcmSeal(this.#current, iv, data, Buffer.concat([header, identity]));
      return Buffer.concat([header, iv, ciphertext, tag]);
    } finally {
      if (typeof plaintext === 'string') wipe(data);
    }
  }

  decrypt(ciphertext: Uint8Array, aad: RecordIdentity): Buffer {
    const identity = encodeIdentity(aad);
    const parsed = parse(ciphertext);
    const key = this.#keys.get(parsed.keyId);
    if (key === undefined) {
      throw new KeyringError(
        'UNKNOWN_KEY_ID',
        `${recordName(aad)} was encrypted under key ${parsed.keyId}, which is not in the keyring (known: ${this.keyIds.join(', ')}); add the old key to ${PREVIOUS_KEYS}`,
      );
    }
    if (!timingSafeEqual(parsed.aadDigest, aadDigest(identity))) {
      throw new KeyringError(
        'AAD_MISMATCH',
        `the ciphertext read for ${recordName(aad)} belongs to another record`,
      );
    }
    try {
      return aesGcmOpen(
        key,
        parsed.iv,
        parsed.ciphertext,
        parsed.tag,
        Buffer.concat([parsed.header, identity]),
      );
    } catch (cause) {
      throw new KeyringError('TAMPERED', `the ciphertext of ${recordName(aad)} failed authentication`, {
        cause,
      });
    }
  }

  keyIdOf(ciphertext: Uint8Array): string {
    return parse(ciphertext).keyId;
  }
}

/** AES-256-GCM encryption exactly as the keyring does it (exported for the known-answer tests). */
export function aesGcmSeal(
  key: KeyObject,
  iv: Uint8Array,
  plaintext: Uint8Array,
  aad: Uint8Array,
): { ciphertext: Buffer; tag: Buffer } {
  const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(aad);
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return { ciphertext, tag: cipher.getAuthTag() };
}

/** AES-256-GCM decryption exactly as the keyring does it; throws when the tag doesn't verify. */
export function aesGcmOpen(
  key: KeyObject,
  iv: Uint8Array,
  ciphertext: Uint8Array,
  tag: Uint8Array,
  aad: Uint8Array,
): Buffer {
  const decipher = createDecipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
  decipher.setAAD(aad);
  decipher.setAuthTag(tag);
  const head = decipher.update(ciphertext);
  try {
    return Buffer.concat([head, decipher.final()]);
  } finally {
    // Unauthenticated plaintext must not outlive a failed check; on success concat made the copy we return.
    wipe(head);
  }
}

interface ParsedCiphertext {
  header: Buffer;
  keyId: string;
  aadDigest: Buffer;
  iv: Buffer;
  ciphertext: Buffer;
  tag: Buffer;
}

function parse(input: Uint8Array): ParsedCiphertext {
  if (!(input instanceof Uint8Array)) {
    throw new KeyringError('MALFORMED_CIPHERTEXT', 'a stored ciphertext must be bytes');
  }
  const bytes = Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  if (bytes.length < 1) throw new KeyringError('MALFORMED_CIPHERTEXT', 'the stored ciphertext is empty');
  if (bytes[0] !== VERSION) {
    throw new KeyringError(
      'UNSUPPORTED_VERSION',
      `unsupported ciphertext version ${bytes[0]} (expected ${VERSION})`,
    );
  }
  if (bytes.length < MIN_CIPHERTEXT_BYTES) {
    throw new KeyringError(
      'MALFORMED_CIPHERTEXT',
      `the stored ciphertext is ${bytes.length} bytes, shorter than the ${MIN_CIPHERTEXT_BYTES}-byte minimum`,
    );
  }
  const ivStart = HEADER_BYTES;
  const tagStart = bytes.length - TAG_BYTES;
  return {
    header: bytes.subarray(0, HEADER_BYTES),
    keyId: bytes.subarray(1, 1 + KEY_ID_BYTES).toString('hex'),
    aadDigest: bytes.subarray(1 + KEY_ID_BYTES, HEADER_BYTES),
    iv: bytes.subarray(ivStart, ivStart + IV_BYTES),
    ciphertext: bytes.subarray(ivStart + IV_BYTES, tagStart),
    tag: bytes.subarray(tagStart),
  };
}

/** Length-prefixed, so ('ab','c') and ('a','bc') can't produce the same AAD. */
function encodeIdentity(aad: RecordIdentity): Buffer {
  const parts = [AAD_LABEL, aad?.table, aad?.rowId, aad?.field];
  if (parts.some((part) => typeof part !== 'string' || part.length === 0)) {
    throw new TypeError('a record identity needs a non-empty table, rowId and field');
  }
  return Buffer.concat(
    (parts as string[]).flatMap((part) => {
      const bytes = Buffer.from(part, 'utf8');
      const length = Buffer.alloc(4);
      length.writeUInt32BE(bytes.length);
      return [length, bytes];
    }),
  );
}

function aadDigest(identity: Buffer): Buffer {
  return createHash('sha256').update(identity).digest().subarray(0, AAD_DIGEST_BYTES);
}

function keyIdBytes(key: KeyObject): Buffer {
  return createHmac('sha256', key).update(KEY_ID_LABEL).digest().subarray(0, KEY_ID_BYTES);
}

function recordName(aad: RecordIdentity): string {
  return `${aad.table}.${aad.field} of row ${aad.rowId}`;
}

/** Reads VAR or VAR_FILE (never both) as bytes, so a key read from a file never becomes a string. */
function readSetting(
  env: NodeJS.ProcessEnv,
  variable: string,
  fileVariable: string,
): { bytes: Buffer; source: string } | undefined {
  const value = env[variable];
  const file = env[fileVariable];
  const hasValue = value !== undefined && value !== '';
  const hasFile = file !== undefined && file !== '';
  if (hasValue && hasFile) {
    throw new KeyringError('KEY_CONFLICT', `set ${variable} or ${fileVariable}, not both`);
  }
  if (hasValue) return { bytes: Buffer.from(value, 'utf8'), source: variable };
  if (!hasFile) return undefined;
  try {
    return { bytes: readFileSync(file), source: `${fileVariable} (${file})` };
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code ?? 'error';
    throw new KeyringError('KEY_FILE_UNREADABLE', `cannot read ${fileVariable} (${file}): ${code}`, {
      cause,
    });
  }
}

function splitKeys(bytes: Buffer, source: string): KeyObject[] {
  const keys: KeyObject[] = [];
  let start = 0;
  for (let index = 0; index <= bytes.length; index++) {
    if (index === bytes.length || isSeparator(bytes[index] ?? 0)) {
      if (index > start)
        keys.push(decodeKey(bytes.subarray(start, index), `${source} entry #${keys.length + 1}`));
      start = index + 1;
    }
  }
  return keys;
}

/** Decodes 64 hex characters (surrounding whitespace allowed) into a KeyObject without a string copy. */
function decodeKey(input: Uint8Array, source: string): KeyObject {
  let start = 0;
  let end = input.length;
  while (start < end && isWhitespace(input[start] ?? 0)) start++;
  while (end > start && isWhitespace(input[end - 1] ?? 0)) end--;
  const length = end - start;
  if (length === 0) throw new KeyringError('KEY_MISSING', `${source} is empty`);
  for (let index = start; index < end; index++) {
    if (hexValue(input[index] ?? 0) < 0) {
      throw new KeyringError(
        'KEY_NOT_HEX',
        `${source} must contain only the hex characters 0-9 and a-f (64 of them), but contains other characters`,
      );
    }
  }
  if (length !== KEY_HEX_CHARS) {
    throw new KeyringError(
      'KEY_LENGTH',
      `${source} must be exactly ${KEY_HEX_CHARS} hex characters (256 bits), but has ${length}`,
    );
  }
  const raw = Buffer.alloc(KEY_BYTES);
  try {
    for (let index = 0; index < KEY_BYTES; index++) {
      raw[index] = hexValue(input[start + 2 * index] ?? 0) * 16 + hexValue(input[start + 2 * index + 1] ?? 0);
    }
    return createSecretKey(raw);
  } finally {
    wipe(raw);
  }
}

function hexValue(byte: number): number {
  if (byte >= 0x30 && byte <= 0x39) return byte - 0x30;
  if (byte >= 0x61 && byte <= 0x66) return byte - 0x61 + 10;
  if (byte >= 0x41 && byte <= 0x46) return byte - 0x41 + 10;
  return -1;
}

function isWhitespace(byte: number): boolean {
  return byte === 0x20 || byte === 0x09 || byte === 0x0a || byte === 0x0d;
}

function isSeparator(byte: number): boolean {
  return byte === 0x2c || isWhitespace(byte);
}
