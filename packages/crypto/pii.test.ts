import { createHash, createHmac, createSecretKey, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { hashPii, hmacPii, normalizePii } from './pii.ts';

const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');
const KEY = randomBytes(32);

describe('normalizePii', () => {
  it('trims and lower-cases strings the way ad platforms match e-mail addresses', () => {
    expect(normalizePii('  Foo.Bar@Example.COM \n')).toBe('foo.bar@example.com');
    expect(normalizePii('\tx\r\n')).toBe('x');
  });

  it('maps null and undefined to null', () => {
    expect(normalizePii(null)).toBeNull();
    expect(normalizePii(undefined)).toBeNull();
  });

  it('maps empty and white-space-only strings, Unicode white space included, to null', () => {
    for (const blank of ['', ' ', '\t\n', '\u00a0', '\u3000', '\u2028', '\ufeff']) {
      expect(normalizePii(blank)).toBeNull();
    }
  });

  it('trims Unicode white space but keeps zero-width characters, which are not white space', () => {
    expect(normalizePii('\u00a0a@b.example\u3000')).toBe('a@b.example');
    expect(normalizePii('\u200ba@b.example')).toBe('\u200ba@b.example');
  });

  it('turns finite numbers and bigints into their decimal text and non-finite numbers into null', () => {
    expect(normalizePii(42)).toBe('42');
    expect(normalizePii(1.5)).toBe('1.5');
    expect(normalizePii(-0)).toBe('0');
    expect(normalizePii(1e21)).toBe('1e+21');
    expect(normalizePii(4915112345678n)).toBe('4915112345678');
    expect(normalizePii(Number.NaN)).toBeNull();
    expect(normalizePii(Number.POSITIVE_INFINITY)).toBeNull();
  });

  it('turns booleans into "true" and "false"', () => {
    expect(normalizePii(true)).toBe('true');
    expect(normalizePii(false)).toBe('false');
  });

  it('turns dates into UTC ISO 8601 and invalid dates into null', () => {
    expect(normalizePii(new Date(Date.UTC(1990, 0, 2, 3, 4, 5)))).toBe('1990-01-02T03:04:05.000Z');
    expect(normalizePii(new Date(Number.NaN))).toBeNull();
  });

  it('refuses objects, arrays, bytes, symbols and functions, naming the type but not the value', () => {
    const canary = 'pii-canary@example.com';
    for (const value of [
      { email: canary },
      [canary],
      Buffer.from(canary),
      new Map([[canary, 1]]),
      Symbol(canary),
      () => canary,
    ]) {
      let error: unknown;
      try {
        normalizePii(value);
      } catch (caught) {
        error = caught;
      }
      expect(error).toBeInstanceOf(TypeError);
      expect(String(error)).not.toContain(canary);
    }
  });

  it('normalizes to NFC, so composed and decomposed accents hash alike', () => {
    const composed = 'Jos\u00e9@example.com';
    const decomposed = 'Jose\u0301@example.com';
    expect(normalizePii(decomposed)).toBe('jos\u00e9@example.com');
    expect(hashPii(composed)).toBe(hashPii(decomposed));
    expect(normalizePii('\u212b')).toBe('\u00e5'); // ANGSTROM SIGN → å
  });

  it('lower-cases with the locale-independent mapping: I → i, İ → i + U+0307, final sigma, ß kept', () => {
    expect(normalizePii('ISTANBUL')).toBe('istanbul');
    expect(normalizePii('İstanbul')).toBe('i\u0307stanbul');
    expect(hashPii('İstanbul')).not.toBe(hashPii('istanbul'));
    expect(normalizePii('ΟΔΟΣ')).toBe('οδος');
    expect(normalizePii('STRAẞE')).toBe('straße');
    expect(hashPii('straße')).not.toBe(hashPii('strasse'));
    expect(normalizePii('ÉCOLE')).toBe('école');
  });

  it('does not merge compatibility forms (NFC, not NFKC)', () => {
    expect(normalizePii('ＡＢＣ')).toBe('ａｂｃ');
    expect(hashPii('ＡＢＣ')).not.toBe(hashPii('abc'));
  });

  it('replaces unpaired surrogates with U+FFFD, as UTF-8 encoding would', () => {
    expect(normalizePii('a\ud800b')).toBe('a\ufffdb');
  });
});

describe('hashPii', () => {
  it('is the hex SHA-256 of the normalized UTF-8 text', () => {
    expect(hashPii(' Foo@Example.COM ')).toBe(sha256('foo@example.com'));
    expect(hashPii('foo@example.com')).toBe(
      '321ba197033e81286fedb719d60d4ed5cecaed170733cb4a92013811afc0e3b6',
    );
    expect(hashPii('Zoë')).toBe(sha256('zoë'));
    expect(hashPii(42)).toBe(sha256('42'));
  });

  it('returns null instead of a hash for null and blank values', () => {
    expect(hashPii(null)).toBeNull();
    expect(hashPii('   ')).toBeNull();
  });
});

describe('hmacPii', () => {
  it('is the hex HMAC-SHA256 of the normalized text, the same for bytes and KeyObject keys', () => {
    const expected = createHmac('sha256', KEY).update('foo@example.com').digest('hex');
    expect(hmacPii(KEY, ' FOO@example.com')).toBe(expected);
    expect(hmacPii(createSecretKey(KEY), 'foo@example.com')).toBe(expected);
    expect(hmacPii(KEY, 'foo@example.com')).not.toBe(hashPii('foo@example.com'));
    expect(hmacPii(randomBytes(32), 'foo@example.com')).not.toBe(expected);
  });

  it('returns null for null and blank values', () => {
    expect(hmacPii(KEY, null)).toBeNull();
    expect(hmacPii(KEY, '')).toBeNull();
  });

  it('refuses keys shorter than 32 bytes or that are not secret keys', () => {
    expect(() => hmacPii(randomBytes(16), 'x')).toThrow(RangeError);
    expect(() => hmacPii(createSecretKey(randomBytes(8)), 'x')).toThrow(RangeError);
    expect(() => hmacPii('a string key' as unknown as Uint8Array, 'x')).toThrow(TypeError);
  });
});
