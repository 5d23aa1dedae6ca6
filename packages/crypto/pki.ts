// The internal CA: the control plane's server certificate and the workers' short-lived client certificates,
// ECDSA P-256. A worker's identity is the single URI SAN spiffe://<trust-domain>/worker/<id> (an X.509-SVID);
// nothing the worker puts in its CSR besides the public key reaches the certificate. Chain validation is left
// to Node's TLS; this module issues and reads identities.
import 'reflect-metadata';
import {
  createPrivateKey,
  createPublicKey,
  type KeyObject,
  X509Certificate as NodeX509Certificate,
  randomBytes,
  webcrypto,
} from 'node:crypto';
import { isIP } from 'node:net';
import type { PeerCertificate } from 'node:tls';
import * as x509 from '@peculiar/x509';

type CryptoKey = webcrypto.CryptoKey;

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

export type PkiErrorCode =
  | 'BAD_CSR'
  | 'CSR_SIGNATURE'
  | 'CSR_EXTENSIONS'
  | 'BAD_CERTIFICATE'
  | 'WRONG_TRUST_DOMAIN'
  | 'NOT_A_WORKER'
  | 'BAD_ID';

/** Every PKI refusal; messages describe the certificate or request, never a private key. */
export class PkiError extends Error {
  readonly code: PkiErrorCode;

  constructor(code: PkiErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'PkiError';
    this.code = code;
  }
}

export interface CertificateAuthority {
  readonly certPem: string;
  readonly trustDomain: string;
  /** A TLS server certificate for the control plane; `hosts` are DNS names or IP addresses (default 90 days). */
  issueServerCertificate(opts: {
    hosts: string[];
    validityDays?: number;
  }): Promise<{ certPem: string; keyPem: string; notAfter: Date }>;
  /**
   * Verifies the CSR's signature and refuses any CSR that asks for extensions (SANs included) or attributes;
   * issues a client certificate with exactly one URI SAN spiffe://<trustDomain>/worker/<workerId>, key usage
   * digitalSignature, extended key usage clientAuth, valid for `ttlSeconds` (default 1 h).
   */
  issueWorkerCertificate(opts: {
    csrPem: string;
    workerId: string;
    ttlSeconds?: number;
  }): Promise<{ certPem: string; notAfter: Date; serial: string }>;
  /**
   * Checks that a worker certificate was signed by this CA, is valid at `now` and names a worker of this trust
   * domain; returns the worker id. For certificates that did not arrive through a verified TLS handshake.
   */
  verifyWorkerCertificate(certPem: string, now?: Date): string;
  /** The CA's private key as PKCS#8 PEM, for persisting the CA (the control plane stores it encrypted). */
  exportKeyPem(): string;
}

const ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const MINUTE_MS = 60_000;
const DAY_MS = 24 * 60 * MINUTE_MS;
// Certificates start a few minutes in the past so a peer whose clock runs slightly behind accepts them.
const CLOCK_SKEW_MS = 5 * MINUTE_MS;
const DEFAULT_WORKER_TTL_SECONDS = 3600;
const MAX_WORKER_TTL_SECONDS = 30 * 24 * 3600;
const WORKER_ID = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$/;
const TRUST_DOMAIN = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;
const DNS_NAME =
  /^(\*\.)?[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/** A new self-signed CA for `trustDomain` (default validity 10 years; it only signs short-lived leaves). */
export async function createCertificateAuthority(opts: {
  trustDomain: string;
  commonName?: string;
  validityDays?: number;
}): Promise<CertificateAuthority> {
  const trustDomain = checkTrustDomain(opts.trustDomain);
  const validityDays = checkPositiveInteger(opts.validityDays ?? 3650, 'validityDays');
  const keys = await webcrypto.subtle.generateKey(ALGORITHM, true, ['sign', 'verify']);
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: new x509.Name([
      { CN: [opts.commonName ?? `Sluice internal CA (${trustDomain})`] },
      { O: ['Sluice'] },
    ]),
    notBefore: new Date(now - CLOCK_SKEW_MS),
    notAfter: new Date(now + validityDays * DAY_MS),
    keys,
    signingAlgorithm: ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  const keyPem = await exportPkcs8Pem(keys.privateKey);
  return new InternalCa(cert, keys.privateKey, createPrivateKey(keyPem), trustDomain);
}

/** The persisted CA; refuses a certificate that isn't a CA or a key that doesn't belong to it. */
export async function loadCertificateAuthority(opts: {
  certPem: string;
  keyPem: string;
  trustDomain: string;
}): Promise<CertificateAuthority> {
  const trustDomain = checkTrustDomain(opts.trustDomain);
  const nodeCert = parseNodeCertificate(opts.certPem, 'the CA certificate');
  if (!nodeCert.ca)
    throw new PkiError('BAD_CERTIFICATE', 'the CA certificate is not a CA (basicConstraints)');
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(opts.keyPem);
  } catch (cause) {
    // The cause is OpenSSL's decoder error; it names no key bytes.
    throw new PkiError('BAD_CERTIFICATE', 'the CA private key is not a readable PEM private key', { cause });
  }
  if (privateKey.asymmetricKeyType !== 'ec' || privateKey.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new PkiError('BAD_CERTIFICATE', 'the CA private key must be an ECDSA P-256 key');
  }
  if (!nodeCert.checkPrivateKey(privateKey)) {
    throw new PkiError('BAD_CERTIFICATE', 'the CA private key does not belong to the CA certificate');
  }
  const pkcs8 = privateKey.export({ format: 'der', type: 'pkcs8' });
  try {
    const signingKey = await webcrypto.subtle.importKey('pkcs8', pkcs8, ALGORITHM, false, ['sign']);
    return new InternalCa(new x509.X509Certificate(opts.certPem), signingKey, privateKey, trustDomain);
  } finally {
    pkcs8.fill(0);
  }
}

/** The worker side: a fresh P-256 key (PKCS#8 PEM, never leaves the worker) and a CSR carrying only its public key. */
export async function createWorkerCsr(): Promise<{ csrPem: string; keyPem: string }> {
  const keys = await webcrypto.subtle.generateKey(ALGORITHM, true, ['sign', 'verify']);
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: 'CN=sluice-worker',
    keys,
    signingAlgorithm: ALGORITHM,
  });
  return { csrPem: csr.toString('pem'), keyPem: await exportPkcs8Pem(keys.privateKey) };
}

/**
 * The worker id named by a peer certificate's single SPIFFE URI SAN in `trustDomain`. Takes Node's
 * `getPeerCertificate()` result or a PEM. It does not check the signature: call it on a certificate the TLS
 * handshake verified (`socket.authorized`), or use `CertificateAuthority.verifyWorkerCertificate`.
 */
export function workerIdFromCertificate(cert: PeerCertificate | string, trustDomain: string): string {
  let parsed: x509.X509Certificate;
  try {
    if (typeof cert === 'string') parsed = new x509.X509Certificate(cert);
    else if (cert?.raw instanceof Uint8Array && cert.raw.length > 0)
      parsed = new x509.X509Certificate(cert.raw);
    else throw new Error('no certificate');
  } catch (cause) {
    throw new PkiError(
      'BAD_CERTIFICATE',
      'the peer certificate is missing or not a readable X.509 certificate',
      {
        cause,
      },
    );
  }
  return workerIdOf(parsed, checkTrustDomain(trustDomain));
}

class InternalCa implements CertificateAuthority {
  readonly certPem: string;
  readonly trustDomain: string;
  readonly #cert: x509.X509Certificate;
  readonly #nodeCert: NodeX509Certificate;
  readonly #signingKey: CryptoKey;
  readonly #privateKey: KeyObject;

  constructor(cert: x509.X509Certificate, signingKey: CryptoKey, privateKey: KeyObject, trustDomain: string) {
    this.#cert = cert;
    this.certPem = cert.toString('pem');
    this.#nodeCert = new NodeX509Certificate(this.certPem);
    this.#signingKey = signingKey;
    this.#privateKey = privateKey;
    this.trustDomain = trustDomain;
  }

  async issueServerCertificate(opts: {
    hosts: string[];
    validityDays?: number;
  }): Promise<{ certPem: string; keyPem: string; notAfter: Date }> {
    const hosts = opts.hosts;
    if (!Array.isArray(hosts) || hosts.length === 0) {
      throw new PkiError('BAD_ID', 'a server certificate needs at least one host name or IP address');
    }
    const names = hosts.map((host): x509.JsonGeneralName => {
      if (typeof host === 'string' && isIP(host) !== 0) return { type: 'ip', value: host };
      if (typeof host === 'string' && host.length <= 253 && DNS_NAME.test(host))
        return { type: 'dns', value: host };
      throw new PkiError('BAD_ID', `"${String(host)}" is neither a DNS name nor an IP address`);
    });
    const validityDays = checkPositiveInteger(opts.validityDays ?? 90, 'validityDays');
    const keys = await webcrypto.subtle.generateKey(ALGORITHM, true, ['sign', 'verify']);
    const now = Date.now();
    const notAfter = new Date(now + validityDays * DAY_MS);
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: randomSerial(),
      subject: new x509.Name([{ CN: [hosts[0] ?? 'localhost'] }, { O: ['Sluice'] }]),
      issuer: this.#cert.subjectName,
      notBefore: new Date(now - CLOCK_SKEW_MS),
      notAfter,
      signingKey: this.#signingKey,
      publicKey: keys.publicKey,
      signingAlgorithm: ALGORITHM,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth], false),
        new x509.SubjectAlternativeNameExtension(names, false),
        await x509.AuthorityKeyIdentifierExtension.create(this.#cert, false),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      ],
    });
    return {
      certPem: cert.toString('pem'),
      keyPem: await exportPkcs8Pem(keys.privateKey),
      notAfter: cert.notAfter,
    };
  }

  async issueWorkerCertificate(opts: {
    csrPem: string;
    workerId: string;
    ttlSeconds?: number;
  }): Promise<{ certPem: string; notAfter: Date; serial: string }> {
    const workerId = checkWorkerId(opts.workerId);
    const ttlSeconds = checkPositiveInteger(opts.ttlSeconds ?? DEFAULT_WORKER_TTL_SECONDS, 'ttlSeconds');
    if (ttlSeconds > MAX_WORKER_TTL_SECONDS) {
      throw new RangeError(`ttlSeconds must be at most ${MAX_WORKER_TTL_SECONDS} (30 days)`);
    }
    const csr = await verifiedCsr(opts.csrPem);
    const serial = randomSerial();
    const now = Date.now();
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: serial,
      // The worker id is already restricted to characters that need no escaping in a DN.
      subject: new x509.Name([{ CN: [workerId] }, { O: ['Sluice worker'] }]),
      issuer: this.#cert.subjectName,
      notBefore: new Date(now - CLOCK_SKEW_MS),
      notAfter: new Date(now + ttlSeconds * 1000),
      signingKey: this.#signingKey,
      publicKey: csr.publicKey,
      signingAlgorithm: ALGORITHM,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth], false),
        new x509.SubjectAlternativeNameExtension(
          [{ type: 'url', value: spiffeId(this.trustDomain, workerId) }],
          false,
        ),
        await x509.AuthorityKeyIdentifierExtension.create(this.#cert, false),
        await x509.SubjectKeyIdentifierExtension.create(csr.publicKey),
      ],
    });
    return { certPem: cert.toString('pem'), notAfter: cert.notAfter, serial };
  }

  verifyWorkerCertificate(certPem: string, now: Date = new Date()): string {
    const nodeCert = parseNodeCertificate(certPem, 'the worker certificate');
    if (nodeCert.checkIssued(this.#nodeCert) === false || !nodeCert.verify(this.#nodeCert.publicKey)) {
      throw new PkiError('BAD_CERTIFICATE', 'the worker certificate was not issued by this CA');
    }
    if (now < nodeCert.validFromDate || now > nodeCert.validToDate) {
      throw new PkiError(
        'BAD_CERTIFICATE',
        `the worker certificate is not valid at ${now.toISOString()} (valid ${nodeCert.validFromDate.toISOString()} to ${nodeCert.validToDate.toISOString()})`,
      );
    }
    return workerIdOf(new x509.X509Certificate(nodeCert.raw), this.trustDomain);
  }

  exportKeyPem(): string {
    return this.#privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
  }
}

async function verifiedCsr(csrPem: string): Promise<x509.Pkcs10CertificateRequest> {
  let csr: x509.Pkcs10CertificateRequest;
  try {
    if (typeof csrPem !== 'string' || !csrPem.includes('CERTIFICATE REQUEST')) throw new Error('not a CSR');
    csr = new x509.Pkcs10CertificateRequest(csrPem);
  } catch (cause) {
    throw new PkiError('BAD_CSR', 'the certificate request is not a readable PKCS#10 CSR', { cause });
  }
  let publicKey: KeyObject;
  try {
    publicKey = createPublicKey({ key: Buffer.from(csr.publicKey.rawData), format: 'der', type: 'spki' });
  } catch (cause) {
    throw new PkiError('BAD_CSR', 'the certificate request carries an unreadable public key', { cause });
  }
  if (publicKey.asymmetricKeyType !== 'ec' || publicKey.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new PkiError('BAD_CSR', 'the certificate request must carry an ECDSA P-256 public key');
  }
  let signatureValid = false;
  try {
    signatureValid = await csr.verify();
  } catch {
    signatureValid = false;
  }
  if (!signatureValid) {
    throw new PkiError('CSR_SIGNATURE', 'the certificate request is not signed by the key it carries');
  }
  // The CA decides every extension; a CSR asking for any (a SAN naming another worker, CA:true) is hostile.
  if (csr.extensions.length > 0 || csr.attributes.length > 0) {
    throw new PkiError(
      'CSR_EXTENSIONS',
      'the certificate request asks for extensions or attributes; send a CSR with only a public key',
    );
  }
  return csr;
}

function workerIdOf(cert: x509.X509Certificate, trustDomain: string): string {
  const san = cert.getExtension(x509.SubjectAlternativeNameExtension);
  const names = san?.names.items ?? [];
  if (names.length !== 1 || names[0]?.type !== 'url') {
    throw new PkiError('NOT_A_WORKER', 'a worker certificate has exactly one SAN, a spiffe:// URI');
  }
  let uri: URL;
  try {
    uri = new URL(names[0].value);
  } catch (cause) {
    throw new PkiError('NOT_A_WORKER', 'the certificate URI SAN is not a URI', { cause });
  }
  if (uri.protocol !== 'spiffe:')
    throw new PkiError('NOT_A_WORKER', 'the certificate URI SAN is not a SPIFFE id');
  if (uri.host !== trustDomain) {
    throw new PkiError(
      'WRONG_TRUST_DOMAIN',
      `the certificate belongs to trust domain "${uri.host}", not "${trustDomain}"`,
    );
  }
  const match = /^\/worker\/([^/]+)$/.exec(uri.pathname);
  if (match === null || uri.search !== '' || uri.hash !== '' || uri.username !== '' || uri.port !== '') {
    throw new PkiError('NOT_A_WORKER', `the SPIFFE id ${uri.pathname} does not name a worker`);
  }
  return checkWorkerId(match[1] ?? '');
}

function spiffeId(trustDomain: string, workerId: string): string {
  return `spiffe://${trustDomain}/worker/${workerId}`;
}

function checkWorkerId(workerId: string): string {
  if (typeof workerId !== 'string' || !WORKER_ID.test(workerId) || workerId === '.' || workerId === '..') {
    throw new PkiError(
      'BAD_ID',
      'a worker id is 1-128 characters of letters, digits, ".", "_" and "-", not starting with "."',
    );
  }
  return workerId;
}

function checkTrustDomain(trustDomain: string): string {
  if (typeof trustDomain !== 'string' || trustDomain.length > 255 || !TRUST_DOMAIN.test(trustDomain)) {
    throw new PkiError('BAD_ID', 'a trust domain is a lower-case DNS-style name such as "sluice.internal"');
  }
  return trustDomain;
}

function checkPositiveInteger(value: number, name: string): number {
  if (!Number.isInteger(value) || value <= 0) throw new RangeError(`${name} must be a positive integer`);
  return value;
}

function parseNodeCertificate(pem: string, what: string): NodeX509Certificate {
  try {
    if (typeof pem !== 'string' || !pem.includes('-----BEGIN CERTIFICATE-----'))
      throw new Error('not a PEM certificate');
    return new NodeX509Certificate(pem);
  } catch (cause) {
    throw new PkiError('BAD_CERTIFICATE', `${what} is not a readable PEM certificate`, { cause });
  }
}

async function exportPkcs8Pem(key: CryptoKey): Promise<string> {
  const der = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', key));
  try {
    return createPrivateKey({ key: der, format: 'der', type: 'pkcs8' })
      .export({ format: 'pem', type: 'pkcs8' })
      .toString();
  } finally {
    der.fill(0);
  }
}

/** 128 random bits as a positive ASN.1 INTEGER in hex (CA/B rules ask for at least 64 bits of entropy). */
function randomSerial(): string {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0] ?? 0) & 0x7f;
  if (bytes[0] === 0) bytes[0] = 0x01; // keep the full length; a leading zero byte would be stripped
  return bytes.toString('hex');
}
