// A throwaway certificate authority for tests: PostgreSQL server certificates, client certificates for
// `cert` authentication, and a second, unrelated CA to prove verification fails. Production PKI lives in
// @sluice/crypto; this one only has to produce certificates OpenSSL and Node accept.
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

const algorithm = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const dayMs = 24 * 60 * 60 * 1000;

/** A PEM certificate with its PKCS#8 PEM private key. */
export interface TestKeyPair {
  certPem: string;
  keyPem: string;
}

export interface TestCa extends TestKeyPair {
  /** Issues a server certificate for the given DNS names and IP addresses. */
  issueServer(hosts: readonly string[]): Promise<TestKeyPair>;
  /** Issues a client certificate whose subject CN is `commonName` (PostgreSQL maps it to the user). */
  issueClient(commonName: string): Promise<TestKeyPair>;
}

export async function createTestCa(name = 'Sluice Test CA'): Promise<TestCa> {
  const keys = await webcrypto.subtle.generateKey(algorithm, true, ['sign', 'verify']);
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: `CN=${name}`,
    notBefore: new Date(now - dayMs),
    notAfter: new Date(now + 30 * dayMs),
    keys,
    signingAlgorithm: algorithm,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });

  async function issue(
    subject: string,
    extensions: x509.Extension[],
    usage: x509.ExtendedKeyUsage,
  ): Promise<TestKeyPair> {
    const leafKeys = await webcrypto.subtle.generateKey(algorithm, true, ['sign', 'verify']);
    const leaf = await x509.X509CertificateGenerator.create({
      serialNumber: randomSerial(),
      subject,
      issuer: cert.subject,
      notBefore: new Date(now - dayMs),
      notAfter: new Date(now + 30 * dayMs),
      signingKey: keys.privateKey,
      publicKey: leafKeys.publicKey,
      signingAlgorithm: algorithm,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([usage], false),
        await x509.AuthorityKeyIdentifierExtension.create(cert, false),
        ...extensions,
      ],
    });
    return { certPem: leaf.toString('pem'), keyPem: await exportKey(leafKeys.privateKey) };
  }

  return {
    certPem: cert.toString('pem'),
    keyPem: await exportKey(keys.privateKey),
    issueServer: (hosts) =>
      issue(
        `CN=${hosts[0] ?? 'localhost'}`,
        [
          new x509.SubjectAlternativeNameExtension(
            hosts.map((value) => ({ type: isIp(value) ? 'ip' : 'dns', value })),
          ),
        ],
        x509.ExtendedKeyUsage.serverAuth,
      ),
    issueClient: (commonName) => issue(`CN=${commonName}`, [], x509.ExtendedKeyUsage.clientAuth),
  };
}

async function exportKey(key: webcrypto.CryptoKey): Promise<string> {
  const der = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', key));
  const lines = der.toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN PRIVATE KEY-----\n${lines.join('\n')}\n-----END PRIVATE KEY-----\n`;
}

function randomSerial(): string {
  const bytes = webcrypto.getRandomValues(new Uint8Array(16));
  bytes[0] = (bytes[0] ?? 0) & 0x7f; // positive INTEGER
  return Buffer.from(bytes).toString('hex');
}

function isIp(host: string): boolean {
  return /^[\d.]+$/.test(host) || host.includes(':');
}
