// Sealed credential envelopes: the control plane seals a datasource secret to one worker process's X25519 key
// with HPKE (RFC 9180 base mode, DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM). The binding (worker,
// job, epoch, expiry, role, datasource) travels in clear so the worker can refuse a stale or foreign envelope
// before touching any key, and is also sealed inside, so an altered binding is detected as such.
//
// One HPKE context, info = label + worker id, carries two messages:
//   message 0: the canonical binding encoding              (tells REBOUND apart from TAMPERED)
//   message 1: the secret, with the binding encoding as AAD
// envelope.ciphertext = u32 length of message 0 | message 0 | message 1
import { webcrypto } from 'node:crypto';
import { Aes256Gcm, CipherSuite, DhkemX25519HkdfSha256, HkdfSha256 } from '@hpke/core';

type CryptoKey = webcrypto.CryptoKey;

/** What an envelope is for; checked on open and authenticated by the seal. */
export interface EnvelopeBinding {
  workerId: string;
  jobId: string;
  epoch: bigint;
  expiresAt: Date;
  role: string;
  datasourceId: string;
}

export interface Envelope {
  version: 1;
  binding: EnvelopeBinding;
  /** The HPKE encapsulated key (the sender's ephemeral X25519 public key), 32 bytes. */
  encapsulatedKey: Uint8Array;
  ciphertext: Uint8Array;
}

export interface EnvelopeKeyPair {
  /** Raw X25519 public key, 32 bytes: what the worker sends when it registers. */
  publicKey: Uint8Array;
  /** Non-extractable: the private key can't be exported, logged or sent anywhere. */
  privateKey: CryptoKey;
}

export type EnvelopeErrorCode =
  | 'EXPIRED'
  | 'FOREIGN'
  | 'REBOUND'
  | 'TAMPERED'
  | 'MALFORMED'
  | 'BAD_PUBLIC_KEY';

/** Every envelope refusal; messages describe the binding, never the secret or key material. */
export class EnvelopeError extends Error {
  readonly code: EnvelopeErrorCode;

  constructor(code: EnvelopeErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'EnvelopeError';
    this.code = code;
  }
}

/** The production suite; exported (not from the package) so tests can run the same code with the RFC's suites. */
export const ENVELOPE_SUITE = new CipherSuite({
  kem: new DhkemX25519HkdfSha256(),
  kdf: new HkdfSha256(),
  aead: new Aes256Gcm(),
});

const VERSION = 1;
const INFO_LABEL = 'sluice.envelope.v1 worker:';
const BINDING_LABEL = 'sluice.envelope.v1 binding';
const PUBLIC_KEY_BYTES = 32;
const TAG_BYTES = 16;
const encoder = new TextEncoder();

/** A fresh X25519 key pair for one worker process; it lives in memory only and dies with the process. */
export async function generateEnvelopeKeyPair(): Promise<EnvelopeKeyPair> {
  const keys = (await webcrypto.subtle.generateKey({ name: 'X25519' }, false, [
    'deriveBits',
  ])) as unknown as webcrypto.CryptoKeyPair;
  const publicKey = new Uint8Array(await webcrypto.subtle.exportKey('raw', keys.publicKey));
  return { publicKey, privateKey: keys.privateKey };
}

/** Seals `secret` to the worker holding `recipientPublicKey`'s private key, bound to `binding`. */
export async function sealEnvelope(
  recipientPublicKey: Uint8Array,
  secret: Uint8Array,
  binding: EnvelopeBinding,
): Promise<Envelope> {
  const encodedBinding = encodeBinding(binding, 'TypeError');
  if (!(recipientPublicKey instanceof Uint8Array) || recipientPublicKey.length !== PUBLIC_KEY_BYTES) {
    throw new EnvelopeError('BAD_PUBLIC_KEY', `a worker public key is ${PUBLIC_KEY_BYTES} raw X25519 bytes`);
  }
  if (!(secret instanceof Uint8Array)) throw new TypeError('the secret to seal must be bytes');
  let publicKey: CryptoKey;
  try {
    publicKey = (await ENVELOPE_SUITE.kem.importKey(
      'raw',
      toArrayBuffer(recipientPublicKey),
      true,
    )) as CryptoKey;
  } catch (cause) {
    throw new EnvelopeError('BAD_PUBLIC_KEY', 'the worker public key is not a valid X25519 key', { cause });
  }
  let enc: Uint8Array;
  let first: Uint8Array;
  let second: Uint8Array;
  try {
    const sender = await hpkeSender(ENVELOPE_SUITE, publicKey, infoFor(binding.workerId));
    enc = sender.enc;
    first = await sender.seal(encodedBinding, new Uint8Array(0));
    second = await sender.seal(secret, encodedBinding);
  } catch (cause) {
    // Encapsulation fails for low-order points (an all-zero shared secret), which RFC 9180 says to refuse.
    throw new EnvelopeError('BAD_PUBLIC_KEY', 'cannot seal to this worker public key', { cause });
  }
  const ciphertext = new Uint8Array(4 + first.length + second.length);
  new DataView(ciphertext.buffer).setUint32(0, first.length);
  ciphertext.set(first, 4);
  ciphertext.set(second, 4 + first.length);
  return { version: VERSION, binding: { ...binding }, encapsulatedKey: enc, ciphertext };
}

/**
 * Opens an envelope after checking its binding against what this worker holds: another worker's envelope is
 * FOREIGN; a different job, epoch or role (or a binding altered after sealing) is REBOUND; one at or past its
 * expiry is EXPIRED; anything that fails authentication is TAMPERED. The secret comes back in a Buffer the
 * caller wipes once it has connected.
 */
export async function openEnvelope(
  privateKey: CryptoKey,
  envelope: Envelope,
  expected: { workerId: string; jobId: string; epoch: bigint; role?: string; now?: number },
): Promise<Buffer> {
  const { binding, encapsulatedKey, first, second } = parseEnvelope(envelope);
  const claimed = encodeBinding(binding, 'MALFORMED');
  if (binding.workerId !== expected.workerId) {
    throw new EnvelopeError(
      'FOREIGN',
      `the envelope was sealed for worker ${binding.workerId}, not this worker`,
    );
  }
  if (binding.jobId !== expected.jobId || binding.epoch !== expected.epoch) {
    throw new EnvelopeError(
      'REBOUND',
      `the envelope is bound to job ${binding.jobId} epoch ${binding.epoch}, not job ${expected.jobId} epoch ${expected.epoch}`,
    );
  }
  if (expected.role !== undefined && binding.role !== expected.role) {
    throw new EnvelopeError('REBOUND', `the envelope is bound to role ${binding.role}, not ${expected.role}`);
  }
  const now = expected.now ?? Date.now();
  if (now >= binding.expiresAt.getTime()) {
    throw new EnvelopeError('EXPIRED', `the envelope expired at ${binding.expiresAt.toISOString()}`);
  }
  let open: HpkeOpen;
  let sealedBinding: Uint8Array;
  try {
    open = await hpkeRecipient(ENVELOPE_SUITE, privateKey, encapsulatedKey, infoFor(binding.workerId));
    sealedBinding = await open(first, new Uint8Array(0));
  } catch (cause) {
    throw new EnvelopeError(
      'TAMPERED',
      'the envelope does not open with this worker key: it was altered or sealed to another key',
      { cause },
    );
  }
  if (!Buffer.from(sealedBinding).equals(claimed)) {
    throw new EnvelopeError('REBOUND', 'the envelope binding was altered after sealing');
  }
  // The secret is decrypted only once the binding is known to be the sealed one.
  try {
    const secret = await open(second, claimed);
    return Buffer.from(secret.buffer, secret.byteOffset, secret.byteLength);
  } catch (cause) {
    throw new EnvelopeError('TAMPERED', 'the sealed secret failed authentication', { cause });
  }
}

/** Seals the next message of an HPKE context (sequence numbers 0, 1, … in call order). */
export type HpkeSeal = (plaintext: Uint8Array, aad: Uint8Array) => Promise<Uint8Array>;
/** Opens the next message of an HPKE context; rejects when it fails authentication. */
export type HpkeOpen = (ciphertext: Uint8Array, aad: Uint8Array) => Promise<Uint8Array>;

/**
 * An HPKE base-mode sender context, the primitive sealEnvelope is built on (exported for the RFC 9180
 * known-answer tests, which run it with the RFC's suite). `ekm` fixes the ephemeral key for those tests only.
 */
export async function hpkeSender(
  suite: CipherSuite,
  recipientPublicKey: CryptoKey,
  info: Uint8Array,
  ekm?: Uint8Array,
): Promise<{ enc: Uint8Array; seal: HpkeSeal }> {
  const context = await suite.createSenderContext({
    recipientPublicKey,
    info: toArrayBuffer(info),
    ...(ekm === undefined ? {} : { ekm: toArrayBuffer(ekm) }),
  });
  return {
    enc: new Uint8Array(context.enc),
    seal: async (plaintext, aad) => {
      const copy = toArrayBuffer(plaintext);
      try {
        return new Uint8Array(await context.seal(copy, toArrayBuffer(aad)));
      } finally {
        new Uint8Array(copy).fill(0);
      }
    },
  };
}

/** The recipient side of hpkeSender, the primitive openEnvelope is built on. */
export async function hpkeRecipient(
  suite: CipherSuite,
  recipientKey: CryptoKey,
  enc: Uint8Array,
  info: Uint8Array,
): Promise<HpkeOpen> {
  const context = await suite.createRecipientContext({
    recipientKey,
    enc: toArrayBuffer(enc),
    info: toArrayBuffer(info),
  });
  return async (ciphertext, aad) =>
    new Uint8Array(await context.open(toArrayBuffer(ciphertext), toArrayBuffer(aad)));
}

function parseEnvelope(envelope: Envelope): {
  binding: EnvelopeBinding;
  encapsulatedKey: Uint8Array;
  first: Uint8Array;
  second: Uint8Array;
} {
  if (typeof envelope !== 'object' || envelope === null || envelope.version !== VERSION) {
    throw new EnvelopeError('MALFORMED', `not a version ${VERSION} envelope`);
  }
  const { binding, encapsulatedKey, ciphertext } = envelope;
  if (!(encapsulatedKey instanceof Uint8Array) || encapsulatedKey.length !== PUBLIC_KEY_BYTES) {
    throw new EnvelopeError('MALFORMED', `the encapsulated key must be ${PUBLIC_KEY_BYTES} bytes`);
  }
  if (!(ciphertext instanceof Uint8Array) || ciphertext.length < 4 + 2 * TAG_BYTES) {
    throw new EnvelopeError('MALFORMED', 'the envelope ciphertext is missing or truncated');
  }
  const firstLength = new DataView(ciphertext.buffer, ciphertext.byteOffset, ciphertext.byteLength).getUint32(
    0,
  );
  if (firstLength < TAG_BYTES || 4 + firstLength + TAG_BYTES > ciphertext.length) {
    throw new EnvelopeError('MALFORMED', 'the envelope ciphertext framing is inconsistent');
  }
  return {
    binding,
    encapsulatedKey,
    first: ciphertext.subarray(4, 4 + firstLength),
    second: ciphertext.subarray(4 + firstLength),
  };
}

/**
 * The canonical binding bytes: a label, then each field length-prefixed (epoch and expiry as decimal
 * integers, expiry in epoch milliseconds), so no two different bindings encode alike.
 */
function encodeBinding(binding: EnvelopeBinding, onInvalid: 'TypeError' | 'MALFORMED'): Buffer {
  const invalid = (what: string) =>
    onInvalid === 'TypeError'
      ? new TypeError(`envelope binding: ${what}`)
      : new EnvelopeError('MALFORMED', `envelope binding: ${what}`);
  if (typeof binding !== 'object' || binding === null) throw invalid('missing');
  const { workerId, jobId, epoch, expiresAt, role, datasourceId } = binding;
  for (const [name, value] of Object.entries({ workerId, jobId, role, datasourceId })) {
    if (typeof value !== 'string' || value.length === 0) throw invalid(`${name} must be a non-empty string`);
  }
  if (typeof epoch !== 'bigint' || epoch < 0n) throw invalid('epoch must be a non-negative bigint');
  if (!(expiresAt instanceof Date) || Number.isNaN(expiresAt.getTime()))
    throw invalid('expiresAt must be a valid Date');
  const fields = [
    BINDING_LABEL,
    workerId,
    jobId,
    epoch.toString(),
    String(expiresAt.getTime()),
    role,
    datasourceId,
  ];
  return Buffer.concat(
    fields.flatMap((field) => {
      const bytes = Buffer.from(field, 'utf8');
      const length = Buffer.alloc(4);
      length.writeUInt32BE(bytes.length);
      return [length, bytes];
    }),
  );
}

function infoFor(workerId: string): Uint8Array {
  return encoder.encode(`${INFO_LABEL}${workerId}`);
}

/** @hpke/core wants ArrayBuffers; copy so a Buffer's shared pool is never handed over whole. */
function toArrayBuffer(bytes: Uint8Array): ArrayBuffer {
  // Not bytes.slice(): on a Buffer that is a view into the shared pool, not a copy.
  const copy = new Uint8Array(bytes.byteLength);
  copy.set(bytes);
  return copy.buffer;
}

/** Serials compared as OpenSSL prints them: upper-case hex without leading zeros. */
export function normaliseSerial(serial: string): string {
  return serial.toUpperCase().replace(/^0+/, '');
}

/**
 * The canonical message a worker signs with its TLS client key to rotate its envelope key (see worker.proto):
 * label, worker id, certificate serial, issue time, new key and challenge, NUL-separated. With an empty
 * challenge it is also what the control plane MACs to make the challenge.
 */
export function envelopeKeyRotationMessage(fields: {
  workerId: string;
  serial: string;
  issuedAtMs: number;
  newKey: Uint8Array;
  challenge: Uint8Array;
}): Buffer {
  return Buffer.from(
    [
      'sluice.envelope-key-rotation.v1',
      fields.workerId,
      normaliseSerial(fields.serial),
      String(fields.issuedAtMs),
      Buffer.from(fields.newKey).toString('hex'),
      Buffer.from(fields.challenge).toString('hex'),
    ].join('\0'),
    'utf8',
  );
}
