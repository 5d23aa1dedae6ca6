import { webcrypto } from 'node:crypto';
import { AeadId, Aes128Gcm, CipherSuite, DhkemX25519HkdfSha256, HkdfSha256, KdfId, KemId } from '@hpke/core';
import { DhkemX25519HkdfSha256 as PortableDhkemX25519 } from '@hpke/dhkem-x25519';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  ENVELOPE_SUITE,
  type Envelope,
  type EnvelopeBinding,
  EnvelopeError,
  type EnvelopeKeyPair,
  generateEnvelopeKeyPair,
  hpkeRecipient,
  hpkeSender,
  openEnvelope,
  sealEnvelope,
} from './envelope.ts';
import { expectRefusal } from './expect-refusal.ts';

const hex = (text: string) => new Uint8Array(Buffer.from(text, 'hex'));
const ascii = (text: string) => new TextEncoder().encode(text);
const toHex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');

// RFC 9180 appendix A.1.1: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-128-GCM, base mode.
const A11 = {
  info: '4f6465206f6e2061204772656369616e2055726e',
  ikmE: '7268600d403fce431561aef583ee1613527cff655c1343f29812e66706df3234',
  ikmR: '6db9df30aa07dd42ee5e8181afdb977e538f5e1fec8a06223f33f7013e525037',
  pkRm: '3948cfe0ad1ddb695d780e59077195da6c56506b027329794ab02bca80815c4d',
  skRm: '4612c550263fc8ad58375df3f557aac531d26850903e55a9f23f21d8534e8ac8',
  enc: '37fda3567bdbd628e88668c3c8d7e97d1d1253b6d4ea6d44c150f741f1bf4431',
  pt: '4265617574792069732074727574682c20747275746820626561757479',
  encryptions: [
    {
      aad: '436f756e742d30',
      ct: 'f938558b5d72f1a23810b4be2ab4f84331acc02fc97babc53a52ae8218a355a96d8770ac83d07bea87e13c512a',
    },
    {
      aad: '436f756e742d31',
      ct: 'af2d7e9ac9ae7e270f46ba1f975be53c09f8d875bdc8535458c2494e8a6eab251c03d0c22a56b8ca42c2063b84',
    },
    {
      aad: '436f756e742d32',
      ct: '498dfcabd92e8acedc281e85af1cb4e3e31c7dc394a1ca20e173cb72516491588d96a19ad4a683518973dcc180',
    },
  ],
};

const SECRET = 'canary-dsn-password-5b0e2f71';
const NOW = Date.parse('2026-11-23T12:00:00Z');

let workerA: EnvelopeKeyPair;
let workerB: EnvelopeKeyPair;

beforeAll(async () => {
  workerA = await generateEnvelopeKeyPair();
  workerB = await generateEnvelopeKeyPair();
});

function binding(overrides: Partial<EnvelopeBinding> = {}): EnvelopeBinding {
  return {
    workerId: 'worker-a',
    jobId: 'job-1',
    epoch: 7n,
    expiresAt: new Date(NOW + 60_000),
    role: 'source',
    datasourceId: 'ds-1',
    ...overrides,
  };
}

const expected = { workerId: 'worker-a', jobId: 'job-1', epoch: 7n, role: 'source', now: NOW };

function seal(overrides: Partial<EnvelopeBinding> = {}): Promise<Envelope> {
  return sealEnvelope(workerA.publicKey, ascii(SECRET), binding(overrides));
}

function refuses(operation: () => unknown, code: string) {
  return expectRefusal(operation, EnvelopeError, code, [SECRET, ascii(SECRET)]);
}

function flip(bytes: Uint8Array, index: number): Uint8Array {
  const copy = new Uint8Array(bytes);
  copy[index] = (copy[index] ?? 0) ^ 0x01;
  return copy;
}

describe('HPKE as the envelope uses it (RFC 9180 A.1.1 known answers)', () => {
  for (const [name, kem] of [
    ['WebCrypto X25519 (@hpke/core)', new DhkemX25519HkdfSha256()],
    ['portable X25519 (@hpke/dhkem-x25519)', new PortableDhkemX25519()],
  ] as const) {
    it(`derives the RFC key pair, encapsulated key and three sequential ciphertexts with the ${name} KEM`, async () => {
      const suite = new CipherSuite({ kem, kdf: new HkdfSha256(), aead: new Aes128Gcm() });
      const recipient = await suite.kem.deriveKeyPair(hex(A11.ikmR).buffer);
      expect(toHex(new Uint8Array(await suite.kem.serializePublicKey(recipient.publicKey)))).toBe(A11.pkRm);

      const sender = await hpkeSender(
        suite,
        recipient.publicKey as webcrypto.CryptoKey,
        hex(A11.info),
        hex(A11.ikmE),
      );
      expect(toHex(sender.enc)).toBe(A11.enc);
      for (const { aad, ct } of A11.encryptions) {
        expect(toHex(await sender.seal(hex(A11.pt), hex(aad)))).toBe(ct);
      }

      const skR = (await suite.kem.importKey('raw', hex(A11.skRm).buffer, false)) as webcrypto.CryptoKey;
      const open = await hpkeRecipient(suite, skR, hex(A11.enc), hex(A11.info));
      for (const { aad, ct } of A11.encryptions) {
        expect(toHex(await open(hex(ct), hex(aad)))).toBe(A11.pt);
      }
    });
  }

  it('seals envelopes with DHKEM(X25519, HKDF-SHA256), HKDF-SHA256 and AES-256-GCM', () => {
    expect(ENVELOPE_SUITE.kem.id).toBe(KemId.DhkemX25519HkdfSha256);
    expect(ENVELOPE_SUITE.kdf.id).toBe(KdfId.HkdfSha256);
    expect(ENVELOPE_SUITE.aead.id).toBe(AeadId.Aes256Gcm);
  });

  it('interoperates with the independent portable X25519 implementation', async () => {
    const portable = new CipherSuite({
      kem: new PortableDhkemX25519(),
      kdf: new HkdfSha256(),
      aead: new Aes128Gcm(),
    });
    const recipient = await portable.kem.generateKeyPair();
    const publicKey = await ENVELOPE_SUITE.kem.importKey(
      'raw',
      await portable.kem.serializePublicKey(recipient.publicKey),
      true,
    );
    const native = new CipherSuite({
      kem: new DhkemX25519HkdfSha256(),
      kdf: new HkdfSha256(),
      aead: new Aes128Gcm(),
    });
    const sender = await hpkeSender(native, publicKey as webcrypto.CryptoKey, ascii('interop'));
    const ct = await sender.seal(ascii(SECRET), ascii('aad'));
    const open = await hpkeRecipient(
      portable,
      recipient.privateKey as webcrypto.CryptoKey,
      sender.enc,
      ascii('interop'),
    );
    expect(new TextDecoder().decode(await open(ct, ascii('aad')))).toBe(SECRET);
  });
});

describe('sealed envelopes', () => {
  it('open for the worker, job, epoch and role they were sealed for', async () => {
    const envelope = await seal();
    expect(envelope.version).toBe(1);
    expect(envelope.encapsulatedKey).toHaveLength(32);
    expect(envelope.binding).toEqual(binding());
    expect(Buffer.from(envelope.ciphertext).includes(Buffer.from(SECRET))).toBe(false);
    const secret = await openEnvelope(workerA.privateKey, envelope, expected);
    expect(secret.toString('utf8')).toBe(SECRET);
    secret.fill(0);
    const { role: _role, ...withoutRole } = expected;
    expect((await openEnvelope(workerA.privateKey, envelope, withoutRole)).toString('utf8')).toBe(SECRET);
  });

  it('use a fresh ephemeral key each time, so two envelopes of one secret share nothing', async () => {
    const a = await seal();
    const b = await seal();
    expect(toHex(a.encapsulatedKey)).not.toBe(toHex(b.encapsulatedKey));
    expect(toHex(a.ciphertext)).not.toBe(toHex(b.ciphertext));
  });

  it('come from a worker key pair whose private half cannot be exported', async () => {
    expect(workerA.publicKey).toHaveLength(32);
    expect(workerA.privateKey.extractable).toBe(false);
    await expect(webcrypto.subtle.exportKey('pkcs8', workerA.privateKey)).rejects.toThrow();
  });

  it('open from byte arrays that sit at an offset inside larger buffers, as protobuf decoding yields them', async () => {
    const envelope = await seal();
    const embed = (bytes: Uint8Array) => {
      const pooled = new Uint8Array(bytes.length + 9);
      pooled.set(bytes, 5);
      return pooled.subarray(5, 5 + bytes.length);
    };
    const moved = {
      ...envelope,
      encapsulatedKey: embed(envelope.encapsulatedKey),
      ciphertext: embed(envelope.ciphertext),
    };
    expect((await openEnvelope(workerA.privateKey, moved, expected)).toString('utf8')).toBe(SECRET);
  });

  it('refuse to seal with an incomplete binding', async () => {
    for (const bad of [
      { workerId: '' },
      { epoch: 1 as unknown as bigint },
      { expiresAt: new Date(Number.NaN) },
      { role: '' },
    ]) {
      await expect(sealEnvelope(workerA.publicKey, ascii(SECRET), binding(bad))).rejects.toThrow(TypeError);
    }
  });

  it('carry an empty or a large secret', async () => {
    for (const secret of [new Uint8Array(0), new Uint8Array(64 * 1024).fill(7)]) {
      const envelope = await sealEnvelope(workerA.publicKey, secret, binding());
      expect(await openEnvelope(workerA.privateKey, envelope, expected)).toEqual(Buffer.from(secret));
    }
  });
});

describe('hostile envelopes', () => {
  it('refuses an envelope at the instant it expires', async () => {
    const envelope = await seal();
    await refuses(
      () => openEnvelope(workerA.privateKey, envelope, { ...expected, now: NOW + 60_000 }),
      'EXPIRED',
    );
  });

  it('refuses an envelope an hour after it expired', async () => {
    const envelope = await seal();
    await refuses(
      () => openEnvelope(workerA.privateKey, envelope, { ...expected, now: NOW + 3_660_000 }),
      'EXPIRED',
    );
  });

  it('refuses an envelope sealed for another worker', async () => {
    const envelope = await seal();
    await refuses(
      () => openEnvelope(workerB.privateKey, envelope, { ...expected, workerId: 'worker-b' }),
      'FOREIGN',
    );
  });

  it('refuses to open with another worker’s key even when it claims the right worker id', async () => {
    const envelope = await seal();
    await refuses(() => openEnvelope(workerB.privateKey, envelope, expected), 'TAMPERED');
  });

  it('refuses an envelope sealed to the previous key pair of a restarted worker', async () => {
    const envelope = await seal();
    const restarted = await generateEnvelopeKeyPair();
    await refuses(() => openEnvelope(restarted.privateKey, envelope, expected), 'TAMPERED');
  });

  it('refuses an envelope for another job', async () => {
    const envelope = await seal();
    await refuses(
      () => openEnvelope(workerA.privateKey, envelope, { ...expected, jobId: 'job-2' }),
      'REBOUND',
    );
  });

  it('refuses an envelope from a stale epoch', async () => {
    const envelope = await seal({ epoch: 6n });
    await refuses(() => openEnvelope(workerA.privateKey, envelope, expected), 'REBOUND');
  });

  it('refuses an envelope for another role', async () => {
    const envelope = await seal({ role: 'sink' });
    await refuses(() => openEnvelope(workerA.privateKey, envelope, expected), 'REBOUND');
  });

  it('refuses an envelope whose expiry was extended after sealing', async () => {
    const envelope = await seal({ expiresAt: new Date(NOW - 1000) });
    envelope.binding.expiresAt = new Date(NOW + 3_600_000);
    await refuses(() => openEnvelope(workerA.privateKey, envelope, expected), 'REBOUND');
  });

  it('refuses an envelope re-bound to another job after sealing', async () => {
    const envelope = await seal({ jobId: 'job-other' });
    envelope.binding.jobId = 'job-1';
    await refuses(() => openEnvelope(workerA.privateKey, envelope, expected), 'REBOUND');
  });

  it('refuses an envelope whose datasource was swapped after sealing', async () => {
    const envelope = await seal();
    envelope.binding.datasourceId = 'ds-2';
    await refuses(() => openEnvelope(workerA.privateKey, envelope, expected), 'REBOUND');
  });

  it('refuses an envelope re-addressed to another worker after sealing', async () => {
    const envelope = await seal();
    envelope.binding.workerId = 'worker-b';
    await refuses(
      () => openEnvelope(workerB.privateKey, envelope, { ...expected, workerId: 'worker-b' }),
      'TAMPERED',
    );
  });

  it('refuses a bit flip in the encapsulated key', async () => {
    const envelope = await seal();
    envelope.encapsulatedKey = flip(envelope.encapsulatedKey, 5);
    await refuses(() => openEnvelope(workerA.privateKey, envelope, expected), 'TAMPERED');
  });

  it('refuses a bit flip in the sealed binding', async () => {
    const envelope = await seal();
    envelope.ciphertext = flip(envelope.ciphertext, 10);
    await refuses(() => openEnvelope(workerA.privateKey, envelope, expected), 'TAMPERED');
  });

  it('refuses a bit flip in the sealed secret', async () => {
    const envelope = await seal();
    envelope.ciphertext = flip(envelope.ciphertext, envelope.ciphertext.length - 20);
    await refuses(() => openEnvelope(workerA.privateKey, envelope, expected), 'TAMPERED');
  });

  it('refuses an envelope with its last byte cut off', async () => {
    const envelope = await seal();
    envelope.ciphertext = envelope.ciphertext.subarray(0, envelope.ciphertext.length - 1);
    await refuses(() => openEnvelope(workerA.privateKey, envelope, expected), 'TAMPERED');
  });

  it('refuses an envelope truncated below its minimum size', async () => {
    const envelope = await seal();
    envelope.ciphertext = envelope.ciphertext.subarray(0, 30);
    await refuses(() => openEnvelope(workerA.privateKey, envelope, expected), 'MALFORMED');
  });

  it('refuses an envelope whose internal framing points past its end', async () => {
    const envelope = await seal();
    const ciphertext = new Uint8Array(envelope.ciphertext);
    new DataView(ciphertext.buffer).setUint32(0, ciphertext.length);
    envelope.ciphertext = ciphertext;
    await refuses(() => openEnvelope(workerA.privateKey, envelope, expected), 'MALFORMED');
  });

  it('refuses the ciphertext of one envelope under the encapsulated key of another', async () => {
    const a = await seal();
    const b = await seal();
    await refuses(
      () => openEnvelope(workerA.privateKey, { ...a, encapsulatedKey: b.encapsulatedKey }, expected),
      'TAMPERED',
    );
  });

  it('refuses an encapsulated key of the wrong length', async () => {
    const envelope = await seal();
    envelope.encapsulatedKey = envelope.encapsulatedKey.subarray(0, 31);
    await refuses(() => openEnvelope(workerA.privateKey, envelope, expected), 'MALFORMED');
  });

  it('refuses an unknown envelope version', async () => {
    const envelope = { ...(await seal()), version: 2 } as unknown as Envelope;
    await refuses(() => openEnvelope(workerA.privateKey, envelope, expected), 'MALFORMED');
  });

  it('refuses a binding whose epoch lost its bigint type in transit', async () => {
    const envelope = await seal();
    (envelope.binding as unknown as { epoch: number }).epoch = 7;
    await refuses(() => openEnvelope(workerA.privateKey, envelope, expected), 'MALFORMED');
  });

  it('refuses a binding with an invalid expiry date', async () => {
    const envelope = await seal();
    envelope.binding.expiresAt = new Date(Number.NaN);
    await refuses(() => openEnvelope(workerA.privateKey, envelope, expected), 'MALFORMED');
  });

  it('refuses to seal to a public key of the wrong length', () =>
    refuses(
      () => sealEnvelope(workerA.publicKey.subarray(0, 31), ascii(SECRET), binding()),
      'BAD_PUBLIC_KEY',
    ));

  it('refuses to seal to the all-zero public key', () =>
    refuses(() => sealEnvelope(new Uint8Array(32), ascii(SECRET), binding()), 'BAD_PUBLIC_KEY'));

  it('refuses to seal to a low-order public key', () => {
    const orderFour = new Uint8Array(32);
    orderFour[0] = 1;
    return refuses(() => sealEnvelope(orderFour, ascii(SECRET), binding()), 'BAD_PUBLIC_KEY');
  });
});
