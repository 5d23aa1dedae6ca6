import 'reflect-metadata';
import { createPrivateKey, webcrypto, X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { connect, createServer, type TLSSocket } from 'node:tls';
import * as x509 from '@peculiar/x509';
import { beforeAll, describe, expect, it } from 'vitest';
import { expectRefusal } from './expect-refusal.ts';
import {
  type CertificateAuthority,
  createCertificateAuthority,
  createWorkerCsr,
  loadCertificateAuthority,
  PkiError,
  workerIdFromCertificate,
} from './pki.ts';
import { clientSecureContext, serverTlsOptions } from './tls.ts';

const TRUST_DOMAIN = 'sluice.internal';
const ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const OID = { serverAuth: '1.3.6.1.5.5.7.3.1', clientAuth: '1.3.6.1.5.5.7.3.2' };

let ca: CertificateAuthority;
let otherCa: CertificateAuthority;
let worker: { csrPem: string; keyPem: string };
let secrets: string[];

/** The base64 body of a PEM and its first line: what a leaked key would look like in a message. */
function pemSecrets(pem: string): string[] {
  const lines = pem.split('\n').filter((line) => line !== '' && !line.startsWith('-----'));
  return [lines.join(''), lines[0] ?? ''];
}

function refuses(operation: () => unknown, code: string) {
  return expectRefusal(operation, PkiError, code, secrets);
}

async function csrWith(options: {
  extensions?: x509.Extension[];
  attributes?: x509.Attribute[];
  keys?: webcrypto.CryptoKeyPair;
  algorithm?: typeof ALGORITHM | webcrypto.RsaHashedKeyGenParams;
}): Promise<string> {
  const algorithm = options.algorithm ?? ALGORITHM;
  const keys = options.keys ?? (await webcrypto.subtle.generateKey(algorithm, true, ['sign', 'verify']));
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: 'CN=sluice-worker',
    keys,
    signingAlgorithm: algorithm,
    ...(options.extensions ? { extensions: options.extensions } : {}),
    ...(options.attributes ? { attributes: options.attributes } : {}),
  });
  return csr.toString('pem');
}

/** Signs an arbitrary leaf with `authority`'s key, to build certificates the CA itself would never issue. */
async function forgeLeaf(authority: CertificateAuthority, names: x509.JsonGeneralName[]): Promise<string> {
  const signingKey = await webcrypto.subtle.importKey(
    'pkcs8',
    createPrivateKey(authority.exportKeyPem()).export({ format: 'der', type: 'pkcs8' }),
    ALGORITHM,
    false,
    ['sign'],
  );
  const leafKeys = await webcrypto.subtle.generateKey(ALGORITHM, true, ['sign', 'verify']);
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: '01',
    subject: 'CN=forged',
    issuer: new x509.X509Certificate(authority.certPem).subject,
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 3_600_000),
    signingKey,
    publicKey: leafKeys.publicKey,
    signingAlgorithm: ALGORITHM,
    extensions: [new x509.SubjectAlternativeNameExtension(names)],
  });
  return cert.toString('pem');
}

beforeAll(async () => {
  ca = await createCertificateAuthority({ trustDomain: TRUST_DOMAIN });
  otherCa = await createCertificateAuthority({ trustDomain: TRUST_DOMAIN, commonName: 'Impostor CA' });
  worker = await createWorkerCsr();
  secrets = [
    ...pemSecrets(ca.exportKeyPem()),
    ...pemSecrets(otherCa.exportKeyPem()),
    ...pemSecrets(worker.keyPem),
  ];
});

describe('the internal CA', () => {
  it('is a self-signed P-256 CA that may only sign leaves', () => {
    const cert = new X509Certificate(ca.certPem);
    expect(cert.ca).toBe(true);
    expect(cert.checkIssued(cert)).toBe(true);
    expect(cert.verify(cert.publicKey)).toBe(true);
    expect(cert.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    expect(cert.subject).toContain(TRUST_DOMAIN);
    const basic = new x509.X509Certificate(ca.certPem).getExtension(x509.BasicConstraintsExtension);
    expect(basic?.pathLength).toBe(0);
    expect(ca.trustDomain).toBe(TRUST_DOMAIN);
  });

  it('issues a dev server certificate for localhost, 127.0.0.1 and ::1 with serverAuth', async () => {
    const server = await ca.issueServerCertificate({ hosts: ['localhost', '127.0.0.1', '::1'] });
    const cert = new X509Certificate(server.certPem);
    expect(cert.subjectAltName).toBe('DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1');
    expect(cert.checkIssued(new X509Certificate(ca.certPem))).toBe(true);
    expect(cert.ca).toBe(false);
    expect(cert.keyUsage).toEqual([OID.serverAuth]);
    expect(cert.checkPrivateKey(createPrivateKey(server.keyPem))).toBe(true);
    expect(cert.checkHost('localhost')).toBe('localhost');
    expect(cert.checkIP('::1')).toBe('::1');
    expect(server.notAfter.getTime()).toBe(cert.validToDate.getTime());
  });

  it('issues a worker certificate with exactly one SPIFFE URI SAN, digitalSignature and clientAuth, for 1 h by default', async () => {
    const issued = await ca.issueWorkerCertificate({ csrPem: worker.csrPem, workerId: 'w_01HZX' });
    const cert = new X509Certificate(issued.certPem);
    expect(cert.subjectAltName).toBe(`URI:spiffe://${TRUST_DOMAIN}/worker/w_01HZX`);
    expect(cert.keyUsage).toEqual([OID.clientAuth]);
    expect(cert.ca).toBe(false);
    expect(cert.serialNumber.toLowerCase()).toBe(issued.serial);
    expect(cert.checkIssued(new X509Certificate(ca.certPem))).toBe(true);
    // The certificate carries the worker's own key, which never left the worker.
    expect(cert.checkPrivateKey(createPrivateKey(worker.keyPem))).toBe(true);
    const parsed = new x509.X509Certificate(issued.certPem);
    const usage = parsed.getExtension(x509.KeyUsagesExtension);
    expect(usage?.usages).toBe(x509.KeyUsageFlags.digitalSignature);
    expect(usage?.critical).toBe(true);
    expect(parsed.getExtension(x509.SubjectAlternativeNameExtension)?.names.items).toHaveLength(1);
    const lifetime = issued.notAfter.getTime() - Date.now();
    expect(lifetime).toBeGreaterThan(50 * 60_000);
    expect(lifetime).toBeLessThanOrEqual(60 * 60_000);
  });

  it('honours a custom worker certificate TTL and makes a fresh serial each time', async () => {
    const a = await ca.issueWorkerCertificate({ csrPem: worker.csrPem, workerId: 'w1', ttlSeconds: 600 });
    const b = await ca.issueWorkerCertificate({ csrPem: worker.csrPem, workerId: 'w1', ttlSeconds: 600 });
    expect(a.serial).not.toBe(b.serial);
    expect(a.notAfter.getTime() - Date.now()).toBeLessThanOrEqual(600_000);
    await expect(
      ca.issueWorkerCertificate({ csrPem: worker.csrPem, workerId: 'w1', ttlSeconds: 0 }),
    ).rejects.toThrow(RangeError);
  });

  it('reads the worker id back from a PEM and verifies its own certificates', async () => {
    const issued = await ca.issueWorkerCertificate({ csrPem: worker.csrPem, workerId: 'worker-7' });
    expect(workerIdFromCertificate(issued.certPem, TRUST_DOMAIN)).toBe('worker-7');
    expect(ca.verifyWorkerCertificate(issued.certPem)).toBe('worker-7');
  });

  it('round-trips through exportKeyPem and loadCertificateAuthority', async () => {
    const loaded = await loadCertificateAuthority({
      certPem: ca.certPem,
      keyPem: ca.exportKeyPem(),
      trustDomain: TRUST_DOMAIN,
    });
    expect(loaded.certPem).toBe(ca.certPem);
    const issued = await loaded.issueWorkerCertificate({ csrPem: worker.csrPem, workerId: 'w2' });
    expect(ca.verifyWorkerCertificate(issued.certPem)).toBe('w2');
    expect(createPrivateKey(loaded.exportKeyPem()).equals(createPrivateKey(ca.exportKeyPem()))).toBe(true);
  });

  it('lets a worker prove its identity over TLS 1.3 and the server read it from getPeerCertificate()', async () => {
    const serverMaterial = await ca.issueServerCertificate({ hosts: ['localhost'] });
    const issued = await ca.issueWorkerCertificate({ csrPem: worker.csrPem, workerId: 'w-tls' });
    const seen: Array<{ authorized: boolean; workerId: string }> = [];
    const server = createServer(serverTlsOptions({ ...serverMaterial, caPem: ca.certPem }), (socket) => {
      seen.push({
        authorized: socket.authorized,
        workerId: workerIdFromCertificate(socket.getPeerCertificate(), TRUST_DOMAIN),
      });
      socket.end();
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    try {
      const socket: TLSSocket = connect({
        host: '127.0.0.1',
        port: (server.address() as AddressInfo).port,
        servername: 'localhost',
        secureContext: clientSecureContext({
          caPem: ca.certPem,
          certPem: issued.certPem,
          keyPem: worker.keyPem,
        }),
      });
      socket.resume();
      await once(socket, 'end');
      expect(socket.getProtocol()).toBe('TLSv1.3');
      socket.destroy();
      expect(seen).toEqual([{ authorized: true, workerId: 'w-tls' }]);
    } finally {
      server.close();
    }
  });
});

describe('hostile certificate requests', () => {
  it('refuses garbage instead of a CSR', () =>
    refuses(() => ca.issueWorkerCertificate({ csrPem: 'not a csr', workerId: 'w1' }), 'BAD_CSR'));

  it('refuses a CSR whose base64 body is corrupted', () =>
    refuses(
      () =>
        ca.issueWorkerCertificate({
          csrPem: '-----BEGIN CERTIFICATE REQUEST-----\nAAAA!!!!\n-----END CERTIFICATE REQUEST-----\n',
          workerId: 'w1',
        }),
      'BAD_CSR',
    ));

  it('refuses a certificate passed off as a CSR', () =>
    refuses(() => ca.issueWorkerCertificate({ csrPem: ca.certPem, workerId: 'w1' }), 'BAD_CSR'));

  it('refuses a CSR signed by a different key than the one it carries', async () => {
    const a = await webcrypto.subtle.generateKey(ALGORITHM, true, ['sign', 'verify']);
    const b = await webcrypto.subtle.generateKey(ALGORITHM, true, ['sign', 'verify']);
    const csrPem = await csrWith({ keys: { publicKey: b.publicKey, privateKey: a.privateKey } });
    await refuses(() => ca.issueWorkerCertificate({ csrPem, workerId: 'w1' }), 'CSR_SIGNATURE');
  });

  it('refuses a CSR whose signature bytes were altered', async () => {
    const csr = new x509.Pkcs10CertificateRequest(worker.csrPem);
    const der = Buffer.from(csr.rawData);
    der[der.length - 1] = (der[der.length - 1] ?? 0) ^ 0x01;
    const csrPem = x509.PemConverter.encode(der, 'CERTIFICATE REQUEST');
    await refuses(() => ca.issueWorkerCertificate({ csrPem, workerId: 'w1' }), 'CSR_SIGNATURE');
  });

  it('refuses a CSR that asks for an extra SAN naming another worker', async () => {
    const csrPem = await csrWith({
      extensions: [
        new x509.SubjectAlternativeNameExtension([
          { type: 'url', value: `spiffe://${TRUST_DOMAIN}/worker/admin` },
        ]),
      ],
    });
    await refuses(() => ca.issueWorkerCertificate({ csrPem, workerId: 'w1' }), 'CSR_EXTENSIONS');
  });

  it('refuses a CSR that asks for a DNS SAN', async () => {
    const csrPem = await csrWith({
      extensions: [
        new x509.SubjectAlternativeNameExtension([{ type: 'dns', value: 'control-plane.internal' }]),
      ],
    });
    await refuses(() => ca.issueWorkerCertificate({ csrPem, workerId: 'w1' }), 'CSR_EXTENSIONS');
  });

  it('refuses a CSR that asks to become a CA', async () => {
    const csrPem = await csrWith({ extensions: [new x509.BasicConstraintsExtension(true, undefined, true)] });
    await refuses(() => ca.issueWorkerCertificate({ csrPem, workerId: 'w1' }), 'CSR_EXTENSIONS');
  });

  it('refuses a CSR carrying an RSA key', async () => {
    const csrPem = await csrWith({
      algorithm: {
        name: 'RSASSA-PKCS1-v1_5',
        hash: 'SHA-256',
        modulusLength: 2048,
        publicExponent: new Uint8Array([1, 0, 1]),
      },
    });
    await refuses(() => ca.issueWorkerCertificate({ csrPem, workerId: 'w1' }), 'BAD_CSR');
  });

  it('refuses a worker id that would change the SPIFFE path', async () => {
    for (const workerId of ['a/b', '..', '', 'w 1', 'w1?admin', 'wörker', 'x'.repeat(129)]) {
      await refuses(() => ca.issueWorkerCertificate({ csrPem: worker.csrPem, workerId }), 'BAD_ID');
    }
  });

  it('refuses an invalid trust domain', () =>
    refuses(() => createCertificateAuthority({ trustDomain: 'Sluice Internal/' }), 'BAD_ID'));

  it('refuses a server certificate for a host that is neither a DNS name nor an IP', () =>
    refuses(() => ca.issueServerCertificate({ hosts: ['local host'] }), 'BAD_ID'));
});

describe('hostile certificates', () => {
  it('refuses garbage PEM as a peer certificate', () =>
    refuses(
      () =>
        workerIdFromCertificate(
          '-----BEGIN CERTIFICATE-----\nZ2FyYmFnZQ==\n-----END CERTIFICATE-----',
          TRUST_DOMAIN,
        ),
      'BAD_CERTIFICATE',
    ));

  it('refuses the empty object getPeerCertificate() returns when the client sent no certificate', () =>
    refuses(
      () => workerIdFromCertificate({} as ReturnType<TLSSocket['getPeerCertificate']>, TRUST_DOMAIN),
      'BAD_CERTIFICATE',
    ));

  it('refuses a server certificate as a worker identity', async () => {
    const server = await ca.issueServerCertificate({ hosts: ['localhost'] });
    await refuses(() => workerIdFromCertificate(server.certPem, TRUST_DOMAIN), 'NOT_A_WORKER');
  });

  it('refuses a certificate with a second URI SAN', async () => {
    const forged = await forgeLeaf(ca, [
      { type: 'url', value: `spiffe://${TRUST_DOMAIN}/worker/w1` },
      { type: 'url', value: `spiffe://${TRUST_DOMAIN}/worker/admin` },
    ]);
    await refuses(() => workerIdFromCertificate(forged, TRUST_DOMAIN), 'NOT_A_WORKER');
  });

  it('refuses a SPIFFE id that is not a worker path', async () => {
    const forged = await forgeLeaf(ca, [{ type: 'url', value: `spiffe://${TRUST_DOMAIN}/admin/w1` }]);
    await refuses(() => workerIdFromCertificate(forged, TRUST_DOMAIN), 'NOT_A_WORKER');
  });

  it('refuses a worker certificate from another trust domain', async () => {
    const foreign = await createCertificateAuthority({ trustDomain: 'other.example' });
    const issued = await foreign.issueWorkerCertificate({ csrPem: worker.csrPem, workerId: 'w1' });
    await refuses(() => workerIdFromCertificate(issued.certPem, TRUST_DOMAIN), 'WRONG_TRUST_DOMAIN');
  });

  it('refuses a worker certificate issued by another CA of the same trust domain', async () => {
    const issued = await otherCa.issueWorkerCertificate({ csrPem: worker.csrPem, workerId: 'w1' });
    await refuses(() => ca.verifyWorkerCertificate(issued.certPem), 'BAD_CERTIFICATE');
  });

  it('refuses an expired worker certificate', async () => {
    const issued = await ca.issueWorkerCertificate({ csrPem: worker.csrPem, workerId: 'w1', ttlSeconds: 60 });
    await refuses(
      () => ca.verifyWorkerCertificate(issued.certPem, new Date(Date.now() + 120_000)),
      'BAD_CERTIFICATE',
    );
  });

  it('refuses to load a CA whose key belongs to another CA', () =>
    refuses(
      () =>
        loadCertificateAuthority({
          certPem: ca.certPem,
          keyPem: otherCa.exportKeyPem(),
          trustDomain: TRUST_DOMAIN,
        }),
      'BAD_CERTIFICATE',
    ));

  it('refuses to load a leaf certificate as the CA', async () => {
    const server = await ca.issueServerCertificate({ hosts: ['localhost'] });
    await refuses(
      () =>
        loadCertificateAuthority({
          certPem: server.certPem,
          keyPem: server.keyPem,
          trustDomain: TRUST_DOMAIN,
        }),
      'BAD_CERTIFICATE',
    );
  });

  it('refuses to load a CA from garbage PEM', () =>
    refuses(
      () =>
        loadCertificateAuthority({
          certPem: 'garbage',
          keyPem: ca.exportKeyPem(),
          trustDomain: TRUST_DOMAIN,
        }),
      'BAD_CERTIFICATE',
    ));

  it('refuses to load a CA with an unreadable key', () =>
    refuses(
      () =>
        loadCertificateAuthority({
          certPem: ca.certPem,
          keyPem: '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----',
          trustDomain: TRUST_DOMAIN,
        }),
      'BAD_CERTIFICATE',
    ));
});
