import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { randomToken, sha256Hex } from './random-token.ts';
import { Secret, wipe } from './secret.ts';

const CANARY = 'canary-4f1d9c2e-secret-value';

describe('Secret', () => {
  it('prints [REDACTED] through toString, template literals, String(), JSON.stringify and util.inspect', () => {
    const secret = Secret.of(CANARY);
    expect(secret.toString()).toBe('[REDACTED]');
    expect(`${secret}`).toBe('[REDACTED]');
    expect(String(secret)).toBe('[REDACTED]');
    expect(`dsn=${secret}`).toBe('dsn=[REDACTED]');
    expect(`${secret}`.concat('')).not.toContain(CANARY);
    expect(JSON.stringify(secret)).toBe('"[REDACTED]"');
    expect(inspect(secret)).toBe('[REDACTED]');
  });

  it('stays redacted inside nested objects, arrays, Maps and error messages', () => {
    const secret = Secret.of(CANARY);
    const bytes = Secret.of(Buffer.from(CANARY));
    const nested = { a: { b: { c: [secret, { d: bytes }] } }, m: new Map([['k', secret]]) };
    for (const text of [
      JSON.stringify(nested),
      inspect(nested, { depth: Number.POSITIVE_INFINITY, showHidden: true }),
      String(new Error(`connect failed: ${secret}`)),
      inspect(new Error(`connect failed: ${secret}`)),
      `${[secret, bytes]}`,
    ]) {
      expect(text).not.toContain(CANARY);
      expect(text).toContain('[REDACTED]');
    }
    expect(Object.keys(secret)).toEqual([]);
  });

  it('lends its value through use and reveal without giving it up', () => {
    const secret = Secret.of(CANARY);
    expect(secret.use((value) => value.length)).toBe(CANARY.length);
    expect(secret.reveal()).toBe(CANARY);
    expect(secret.wiped).toBe(false);
  });

  it('zero-fills a Buffer on wipe and refuses every later use', () => {
    const buffer = Buffer.from(CANARY);
    const secret = Secret.of(buffer);
    secret.wipe();
    expect(buffer.every((byte) => byte === 0)).toBe(true);
    expect(secret.wiped).toBe(true);
    expect(() => secret.reveal()).toThrow(/wiped/);
    expect(() => secret.use(() => 1)).toThrow(/wiped/);
  });

  it('wipes a Buffer right after a synchronous useOnce, even when the callback throws', () => {
    const buffer = Buffer.from(CANARY);
    expect(Secret.of(buffer).useOnce((value) => value.toString('utf8'))).toBe(CANARY);
    expect(buffer.every((byte) => byte === 0)).toBe(true);

    const other = Buffer.from(CANARY);
    const secret = Secret.of(other);
    expect(() =>
      secret.useOnce(() => {
        throw new Error('boom');
      }),
    ).toThrow('boom');
    expect(other.every((byte) => byte === 0)).toBe(true);
  });

  it('keeps the bytes intact while an async useOnce runs and wipes them once it settles', async () => {
    const buffer = Buffer.from(CANARY);
    const secret = Secret.of(buffer);
    let seenInside = '';
    const pending = secret.useOnce(async (value) => {
      await new Promise((resolve) => setImmediate(resolve));
      seenInside = value.toString('utf8');
      return 'done';
    });
    expect(buffer.toString('utf8')).toBe(CANARY);
    await expect(pending).resolves.toBe('done');
    expect(seenInside).toBe(CANARY);
    expect(buffer.every((byte) => byte === 0)).toBe(true);

    const failing = Buffer.from(CANARY);
    await expect(
      Secret.of(failing).useOnce(async () => {
        throw new Error('connect refused');
      }),
    ).rejects.toThrow('connect refused');
    expect(failing.every((byte) => byte === 0)).toBe(true);
  });
});

describe('wipe', () => {
  it('zero-fills every buffer it is given and skips undefined ones', () => {
    const a = Buffer.from('first secret');
    const b = new Uint8Array([1, 2, 3]);
    wipe(a, undefined, b);
    expect(a.every((byte) => byte === 0)).toBe(true);
    expect(b.every((byte) => byte === 0)).toBe(true);
  });
});

describe('randomToken and sha256Hex', () => {
  it('makes distinct base64url tokens of 32 random bytes by default', () => {
    const tokens = new Set(Array.from({ length: 1000 }, () => randomToken()));
    expect(tokens.size).toBe(1000);
    for (const token of tokens) {
      expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(Buffer.from(token, 'base64url')).toHaveLength(32);
    }
    expect(Buffer.from(randomToken(16), 'base64url')).toHaveLength(16);
  });

  it('refuses token sizes that are too small to be unguessable or not integers', () => {
    for (const bytes of [0, 8, 15, 16.5, Number.NaN, 5000]) {
      expect(() => randomToken(bytes)).toThrow(RangeError);
    }
  });

  it('hashes strings as UTF-8 and bytes as they are (FIPS 180-2 "abc" vector)', () => {
    const abc = 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad';
    expect(sha256Hex('abc')).toBe(abc);
    expect(sha256Hex(new Uint8Array([0x61, 0x62, 0x63]))).toBe(abc);
  });
});
