import { createHmac, createSecretKey } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { expectRefusal } from './expect-refusal.ts';
import {
  aesGcmOpen,
  aesGcmSeal,
  createKeyring,
  generateEncryptionKey,
  type Keyring,
  KeyringError,
  loadKeyring,
  type RecordIdentity,
} from './keyring.ts';

const hex = (text: string) => Buffer.from(text, 'hex');
const KEY = generateEncryptionKey();
const OLD_KEY = generateEncryptionKey();
const PLAINTEXT = 'postgres-password-canary-8c1e77';
const ROW: RecordIdentity = { table: 'datasources', rowId: 'ds_42', field: 'password' };
const dir = mkdtempSync(join(tmpdir(), 'sluice-keyring-'));

function keyFile(name: string, content: string): string {
  const path = join(dir, name);
  writeFileSync(path, content, { mode: 0o600 });
  return path;
}

/** Every secret a keyring error must not show: both keys (any case) and the plaintext. */
const SECRETS = [KEY, OLD_KEY, PLAINTEXT, hex(KEY), hex(OLD_KEY)];

function refuses(operation: () => unknown, code: string, extraSecrets: string[] = []) {
  return expectRefusal(operation, KeyringError, code, [...SECRETS, ...extraSecrets]);
}

describe('AES-256-GCM as the keyring uses it (known answers)', () => {
  it('matches NIST CAVP gcmEncryptExtIV256 count 0 (empty plaintext and AAD)', () => {
    const key = createSecretKey(hex('b52c505a37d78eda5dd34f20c22540ea1b58963cf8e5bf8ffa85f9f2492505b4'));
    const iv = hex('516c33929df5a3284ff463d7');
    const { ciphertext, tag } = aesGcmSeal(key, iv, new Uint8Array(0), new Uint8Array(0));
    expect(ciphertext).toHaveLength(0);
    expect(tag.toString('hex')).toBe('bdc1ac884d332457a1d2664f168c76f0');
    expect(aesGcmOpen(key, iv, ciphertext, tag, new Uint8Array(0))).toHaveLength(0);
  });

  it('matches GCM specification test case 16 (AES-256, 60-byte plaintext, 20-byte AAD) both ways', () => {
    const key = createSecretKey(hex('feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308'));
    const iv = hex('cafebabefacedbaddecaf888');
    const plaintext = hex(
      'd9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39',
    );
    const aad = hex('feedfacedeadbeeffeedfacedeadbeefabaddad2');
    const expected =
      '522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662';
    const { ciphertext, tag } = aesGcmSeal(key, iv, plaintext, aad);
    expect(ciphertext.toString('hex')).toBe(expected);
    expect(tag.toString('hex')).toBe('76fc6ece0f4e1768cddf8853bb2d551b');
    expect(aesGcmOpen(key, iv, hex(expected), hex('76fc6ece0f4e1768cddf8853bb2d551b'), aad)).toEqual(
      plaintext,
    );
  });

  it('matches GCM specification test case 14 (zero key, zero IV, one zero block)', () => {
    const { ciphertext, tag } = aesGcmSeal(
      createSecretKey(Buffer.alloc(32)),
      Buffer.alloc(12),
      Buffer.alloc(16),
      new Uint8Array(0),
    );
    expect(ciphertext.toString('hex')).toBe('cea7403d4d606b6e074ec5d3baf39d18');
    expect(tag.toString('hex')).toBe('d0d1c8a799996bf0265b98b5d48ab919');
  });
});

describe('a keyring', () => {
  it('round-trips strings, bytes and empty values for the record they were written for', () => {
    const keyring = createKeyring(KEY);
    expect(keyring.decrypt(keyring.encrypt(PLAINTEXT, ROW), ROW).toString('utf8')).toBe(PLAINTEXT);
    const bytes = new Uint8Array([0, 1, 2, 255]);
    expect(keyring.decrypt(keyring.encrypt(bytes, ROW), ROW)).toEqual(Buffer.from(bytes));
    expect(keyring.decrypt(keyring.encrypt('', ROW), ROW)).toHaveLength(0);
    expect(keyring.decrypt(keyring.encrypt('pässwörd ☃', ROW), ROW).toString('utf8')).toBe('pässwörd ☃');
  });

  it('writes version 1, the key id, an 8-byte AAD digest, a 12-byte IV and a 16-byte tag around the ciphertext', () => {
    const keyring = createKeyring(KEY);
    const stored = keyring.encrypt(PLAINTEXT, ROW);
    expect(stored).toHaveLength(1 + 4 + 8 + 12 + Buffer.byteLength(PLAINTEXT) + 16);
    expect(stored[0]).toBe(1);
    expect(stored.subarray(1, 5).toString('hex')).toBe(keyring.currentKeyId);
    expect(stored.includes(Buffer.from(PLAINTEXT))).toBe(false);
    expect(keyring.keyIdOf(stored)).toBe(keyring.currentKeyId);
  });

  it('derives the key id from the key itself (8 hex chars of HMAC-SHA256(key, "sluice key id"))', () => {
    const expected = createHmac('sha256', hex(KEY)).update('sluice key id').digest('hex').slice(0, 8);
    expect(createKeyring(KEY).currentKeyId).toBe(expected);
    expect(createKeyring(KEY.toUpperCase()).currentKeyId).toBe(expected);
    expect(createKeyring(OLD_KEY).currentKeyId).not.toBe(expected);
  });

  it('uses a fresh IV for each of 100,000 encryptions', () => {
    const keyring = createKeyring(KEY);
    const ivs = new Set<string>();
    const plaintext = Buffer.from('same plaintext every time');
    for (let index = 0; index < 100_000; index++) {
      ivs.add(keyring.encrypt(plaintext, ROW).subarray(13, 25).toString('hex'));
    }
    expect(ivs.size).toBe(100_000);
  });

  it('keeps old ciphertexts readable after a rotation and writes new ones under the new key id', () => {
    const before = createKeyring(OLD_KEY);
    const old = before.encrypt(PLAINTEXT, ROW);

    const after = createKeyring(KEY, [OLD_KEY]);
    expect(after.currentKeyId).toBe(createKeyring(KEY).currentKeyId);
    expect(after.keyIds).toEqual([after.currentKeyId, before.currentKeyId]);
    expect(after.keyIdOf(old)).toBe(before.currentKeyId);
    expect(after.decrypt(old, ROW).toString('utf8')).toBe(PLAINTEXT);

    const fresh = after.encrypt(PLAINTEXT, ROW);
    expect(after.keyIdOf(fresh)).toBe(after.currentKeyId);
    expect(after.decrypt(fresh, ROW).toString('utf8')).toBe(PLAINTEXT);
    // Re-encryption (what `sluice keys rotate` does) moves a record to the new key.
    const reencrypted = after.encrypt(after.decrypt(old, ROW), ROW);
    expect(after.keyIdOf(reencrypted)).toBe(after.currentKeyId);
  });

  it('decrypts a ciphertext that sits at an offset inside a larger buffer, as drivers hand bytea back', () => {
    const keyring = createKeyring(KEY);
    const stored = keyring.encrypt(PLAINTEXT, ROW);
    const pooled = Buffer.concat([Buffer.alloc(7, 0xee), stored, Buffer.alloc(5, 0xee)]);
    const view = pooled.subarray(7, 7 + stored.length);
    expect(keyring.decrypt(view, ROW).toString('utf8')).toBe(PLAINTEXT);
    expect(keyring.keyIdOf(view)).toBe(keyring.currentKeyId);
  });

  it('insists on a complete record identity, since it is what binds a ciphertext to its row', () => {
    const keyring = createKeyring(KEY);
    for (const aad of [{ ...ROW, table: '' }, { ...ROW, rowId: '' }, { table: 't', rowId: 'r' }, undefined]) {
      expect(() => keyring.encrypt(PLAINTEXT, aad as RecordIdentity)).toThrow(TypeError);
    }
    // Length prefixes keep ('ab', 'c') and ('a', 'bc') apart.
    const stored = keyring.encrypt(PLAINTEXT, { table: 'ab', rowId: 'c', field: 'f' });
    expect(() => keyring.decrypt(stored, { table: 'a', rowId: 'bc', field: 'f' })).toThrow(KeyringError);
  });

  it('ignores a key listed as both current and previous', () => {
    const keyring = createKeyring(KEY, [KEY, OLD_KEY, OLD_KEY]);
    expect(keyring.keyIds).toHaveLength(2);
  });

  it('generates distinct 64-hex-character keys', () => {
    const keys = new Set(Array.from({ length: 100 }, generateEncryptionKey));
    expect(keys.size).toBe(100);
    for (const key of keys) expect(key).toMatch(/^[0-9a-f]{64}$/);
  });
});

describe('loadKeyring', () => {
  it('reads CONFIG_ENCRYPTION_KEY', () => {
    expect(loadKeyring({ CONFIG_ENCRYPTION_KEY: KEY }).currentKeyId).toBe(createKeyring(KEY).currentKeyId);
  });

  it('reads CONFIG_ENCRYPTION_KEY_FILE, ignoring the trailing newline an editor or echo leaves', () => {
    const keyring = loadKeyring({ CONFIG_ENCRYPTION_KEY_FILE: keyFile('key', `${KEY}\n`) });
    expect(keyring.currentKeyId).toBe(createKeyring(KEY).currentKeyId);
  });

  it('reads previous keys separated by commas, spaces or newlines, from the variable or a file', () => {
    const third = generateEncryptionKey();
    const expected = createKeyring(KEY, [OLD_KEY, third]).keyIds;
    expect(
      loadKeyring({ CONFIG_ENCRYPTION_KEY: KEY, CONFIG_ENCRYPTION_PREVIOUS_KEYS: `${OLD_KEY}, ${third}` })
        .keyIds,
    ).toEqual(expected);
    expect(
      loadKeyring({
        CONFIG_ENCRYPTION_KEY: KEY,
        CONFIG_ENCRYPTION_PREVIOUS_KEYS_FILE: keyFile('previous', `${OLD_KEY}\n${third}\n`),
      }).keyIds,
    ).toEqual(expected);
  });

  it('treats empty variables as unset', () => {
    const keyring = loadKeyring({
      CONFIG_ENCRYPTION_KEY: '',
      CONFIG_ENCRYPTION_KEY_FILE: keyFile('k2', KEY),
    });
    expect(keyring.currentKeyId).toBe(createKeyring(KEY).currentKeyId);
  });
});

describe('hostile keys', () => {
  it('refuses a key one character short', () => refuses(() => createKeyring(KEY.slice(0, 63)), 'KEY_LENGTH'));

  it('refuses a key one character long', () => refuses(() => createKeyring(`${KEY}a`), 'KEY_LENGTH'));

  it('refuses a 128-bit key', () => refuses(() => createKeyring(KEY.slice(0, 32)), 'KEY_LENGTH'));

  it('refuses a 64-character key with a non-hex character', async () => {
    const bad = `${KEY.slice(0, 40)}g${KEY.slice(41)}`;
    await refuses(() => createKeyring(bad), 'KEY_NOT_HEX', [bad]);
  });

  it('refuses a base64-encoded key', async () => {
    const base64 = hex(KEY).toString('base64');
    await refuses(() => loadKeyring({ CONFIG_ENCRYPTION_KEY: base64 }), 'KEY_NOT_HEX', [base64]);
  });

  it('refuses a key with a 0x prefix', async () => {
    await refuses(() => loadKeyring({ CONFIG_ENCRYPTION_KEY: `0x${KEY}` }), 'KEY_NOT_HEX');
  });

  it('refuses to start without any key', async () => {
    const error = await refuses(() => loadKeyring({}), 'KEY_MISSING');
    expect(error.message).toContain('CONFIG_ENCRYPTION_KEY');
  });

  it('refuses a key made only of whitespace', () =>
    refuses(() => loadKeyring({ CONFIG_ENCRYPTION_KEY: ' \n ' }), 'KEY_MISSING'));

  it('refuses both CONFIG_ENCRYPTION_KEY and CONFIG_ENCRYPTION_KEY_FILE', () =>
    refuses(
      () => loadKeyring({ CONFIG_ENCRYPTION_KEY: KEY, CONFIG_ENCRYPTION_KEY_FILE: keyFile('both', OLD_KEY) }),
      'KEY_CONFLICT',
    ));

  it('refuses a key file that does not exist', async () => {
    const error = await refuses(
      () => loadKeyring({ CONFIG_ENCRYPTION_KEY_FILE: join(dir, 'missing') }),
      'KEY_FILE_UNREADABLE',
    );
    expect(error.message).toContain('ENOENT');
  });

  it('refuses a key file that is a directory', () =>
    refuses(() => loadKeyring({ CONFIG_ENCRYPTION_KEY_FILE: dir }), 'KEY_FILE_UNREADABLE'));

  it('refuses a key file with the wrong length and names the file, not its content', async () => {
    const path = keyFile('short', KEY.slice(0, 60));
    const error = await refuses(() => loadKeyring({ CONFIG_ENCRYPTION_KEY_FILE: path }), 'KEY_LENGTH');
    expect(error.message).toContain(path);
  });

  it('refuses a malformed previous key and says which entry it is', async () => {
    const error = await refuses(
      () =>
        loadKeyring({
          CONFIG_ENCRYPTION_KEY: KEY,
          CONFIG_ENCRYPTION_PREVIOUS_KEYS: `${OLD_KEY},${OLD_KEY}zz`,
        }),
      'KEY_NOT_HEX',
    );
    expect(error.message).toContain('entry #2');
  });

  it('refuses previous keys given both as a variable and a file', () =>
    refuses(
      () =>
        loadKeyring({
          CONFIG_ENCRYPTION_KEY: KEY,
          CONFIG_ENCRYPTION_PREVIOUS_KEYS: OLD_KEY,
          CONFIG_ENCRYPTION_PREVIOUS_KEYS_FILE: keyFile('prev-both', OLD_KEY),
        }),
      'KEY_CONFLICT',
    ));
});

describe('hostile ciphertexts', () => {
  const keyring: Keyring = createKeyring(KEY, [OLD_KEY]);
  const stored = () => keyring.encrypt(PLAINTEXT, ROW);
  const flip = (bytes: Buffer, index: number) => {
    const copy = Buffer.from(bytes);
    copy[index] = (copy[index] ?? 0) ^ 0x01;
    return copy;
  };

  it('refuses a ciphertext written under a key the keyring no longer has', async () => {
    const foreign = createKeyring(generateEncryptionKey()).encrypt(PLAINTEXT, ROW);
    await refuses(() => keyring.decrypt(foreign, ROW), 'UNKNOWN_KEY_ID');
  });

  it('refuses a ciphertext truncated anywhere inside its fixed-size parts', async () => {
    const full = stored();
    for (const length of [0, 1, 5, 13, 25, 40]) {
      await refuses(() => keyring.decrypt(full.subarray(0, length), ROW), 'MALFORMED_CIPHERTEXT');
    }
  });

  it('refuses a ciphertext with its last byte cut off', () =>
    refuses(() => {
      const full = stored();
      return keyring.decrypt(full.subarray(0, full.length - 1), ROW);
    }, 'TAMPERED'));

  it('refuses a ciphertext with garbage appended', () =>
    refuses(() => keyring.decrypt(Buffer.concat([stored(), Buffer.from([0])]), ROW), 'TAMPERED'));

  it('refuses a bit flip in the encrypted body', () =>
    refuses(() => keyring.decrypt(flip(stored(), 30), ROW), 'TAMPERED'));

  it('refuses a bit flip in the tag', async () => {
    const full = stored();
    await refuses(() => keyring.decrypt(flip(full, full.length - 1), ROW), 'TAMPERED');
  });

  it('refuses a bit flip in the IV', () =>
    refuses(() => keyring.decrypt(flip(stored(), 13), ROW), 'TAMPERED'));

  it('refuses an unknown version byte', () =>
    refuses(() => keyring.decrypt(flip(stored(), 0), ROW), 'UNSUPPORTED_VERSION'));

  it('refuses a bit flip in the key id', () =>
    refuses(() => keyring.decrypt(flip(stored(), 2), ROW), 'UNKNOWN_KEY_ID'));

  it('refuses a ciphertext moved to another row', () =>
    refuses(() => keyring.decrypt(stored(), { ...ROW, rowId: 'ds_43' }), 'AAD_MISMATCH'));

  it('refuses a ciphertext moved to another field', () =>
    refuses(() => keyring.decrypt(stored(), { ...ROW, field: 'connection_string' }), 'AAD_MISMATCH'));

  it('refuses a ciphertext moved to another table', () =>
    refuses(() => keyring.decrypt(stored(), { ...ROW, table: 'destinations' }), 'AAD_MISMATCH'));

  it('refuses a moved ciphertext whose AAD digest was rewritten to match the new row', async () => {
    const other = { ...ROW, rowId: 'ds_43' };
    const forged = stored();
    keyring.encrypt('x', other).copy(forged, 5, 5, 13);
    await refuses(() => keyring.decrypt(forged, other), 'TAMPERED');
  });

  it('refuses a header spliced onto another record’s body', async () => {
    const a = stored();
    const b = keyring.encrypt('another secret value', ROW);
    await refuses(() => keyring.decrypt(Buffer.concat([a.subarray(0, 25), b.subarray(25)]), ROW), 'TAMPERED');
  });

  it('refuses a ciphertext given as a string instead of bytes', () =>
    refuses(
      () => keyring.decrypt(stored().toString('base64') as unknown as Uint8Array, ROW),
      'MALFORMED_CIPHERTEXT',
    ));

  it('refuses an old ciphertext whose key was dropped after rotation', async () => {
    const old = createKeyring(OLD_KEY).encrypt(PLAINTEXT, ROW);
    const error = await refuses(() => createKeyring(KEY).decrypt(old, ROW), 'UNKNOWN_KEY_ID');
    expect(error.message).toContain('CONFIG_ENCRYPTION_PREVIOUS_KEYS');
  });
});
