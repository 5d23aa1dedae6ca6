import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import {
  connect as connectHttp2,
  createSecureServer,
  type Http2SecureServer,
  type SecureClientSessionOptions,
} from 'node:http2';
import type { AddressInfo } from 'node:net';
import { type ConnectionOptions, connect, createServer as createTlsServer, type TLSSocket } from 'node:tls';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type CertificateAuthority, createCertificateAuthority, createWorkerCsr } from './pki.ts';
import {
  clientSecureContext,
  rotationTlsOptions,
  serverTlsOptions,
  TLS_CIPHER_SUITES,
  TLS_POLICY,
  type TlsMaterial,
} from './tls.ts';

let ca: CertificateAuthority;
let first: TlsMaterial;
let second: TlsMaterial;
const servers: Array<{ close(cb?: () => void): unknown }> = [];

beforeAll(async () => {
  ca = await createCertificateAuthority({ trustDomain: 'sluice.test' });
  const a = await ca.issueServerCertificate({ hosts: ['localhost', '127.0.0.1'] });
  const b = await ca.issueServerCertificate({ hosts: ['localhost', '127.0.0.1'] });
  first = { certPem: a.certPem, keyPem: a.keyPem, caPem: ca.certPem };
  second = { certPem: b.certPem, keyPem: b.keyPem, caPem: ca.certPem };
});

afterEach(async () => {
  await Promise.all(
    servers.splice(0).map((server) => new Promise<void>((resolve) => server.close(() => resolve()))),
  );
});

async function startServer(material: TlsMaterial): Promise<{ server: Http2SecureServer; port: number }> {
  // Answers with what a handler would check before trusting a worker: is the peer certificate verified?
  const server = createSecureServer(serverTlsOptions(material), (req, res) => {
    const socket = (req.httpVersion === '2.0' ? req.stream.session?.socket : req.socket) as TLSSocket;
    res.end(
      JSON.stringify({
        authorized: socket.authorized,
        subject: socket.getPeerCertificate().subject?.CN ?? null,
      }),
    );
  });
  servers.push(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, port: (server.address() as AddressInfo).port };
}

interface Handshake {
  protocol: string | null;
  cipher: string;
  fingerprint: string | undefined;
}

/** Completes a handshake and reports what was negotiated, or rejects with the TLS error. */
function handshake(port: number, options: ConnectionOptions): Promise<Handshake> {
  return new Promise((resolve, reject) => {
    const socket: TLSSocket = connect({
      host: '127.0.0.1',
      port,
      servername: 'localhost',
      ca: ca.certPem,
      ...options,
    });
    socket.once('secureConnect', () => {
      const result = {
        protocol: socket.getProtocol(),
        cipher: socket.getCipher().standardName,
        fingerprint: socket.getPeerX509Certificate()?.fingerprint256,
      };
      socket.destroy();
      resolve(result);
    });
    socket.once('error', (error) => {
      socket.destroy();
      reject(error);
    });
  });
}

/** A worker key and a certificate for it from `authority`. */
async function workerMaterial(authority: CertificateAuthority, workerId: string) {
  const { csrPem, keyPem } = await createWorkerCsr();
  const { certPem } = await authority.issueWorkerCertificate({ csrPem, workerId });
  return { certPem, keyPem };
}

/** One HTTP/2 GET over a fresh session; resolves with the handler's JSON answer. */
function http2Get(
  port: number,
  options: SecureClientSessionOptions,
): Promise<{ authorized: boolean; subject: string | null }> {
  return new Promise((resolve, reject) => {
    const session = connectHttp2(`https://localhost:${port}`, {
      ca: ca.certPem,
      host: '127.0.0.1',
      ...options,
    });
    session.once('error', reject);
    const stream = session.request({ ':path': '/' });
    let body = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      body += chunk;
    });
    stream.once('error', reject);
    stream.once('end', () => {
      session.close();
      resolve(JSON.parse(body));
    });
  });
}

const tls12 = { minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2' } as const;
const fingerprint = (material: TlsMaterial) => new X509Certificate(material.certPem).fingerprint256;

describe('the TLS policy', () => {
  it('is TLS 1.3 only with exactly the three allowed suites, strongest first', () => {
    expect(TLS_POLICY).toEqual({
      minVersion: 'TLSv1.3',
      maxVersion: 'TLSv1.3',
      ciphers: 'TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256',
    });
    expect(Object.isFrozen(TLS_POLICY)).toBe(true);
    expect(Object.isFrozen(TLS_CIPHER_SUITES)).toBe(true);
  });

  it('builds server options that request but do not require a client certificate and allow HTTP/1.1', () => {
    const options = serverTlsOptions(first);
    expect(options).toMatchObject({
      ...TLS_POLICY,
      cert: first.certPem,
      key: first.keyPem,
      ca: first.caPem,
      requestCert: true,
      rejectUnauthorized: false,
      allowHTTP1: true,
    });
    expect(serverTlsOptions(first, { requestCert: false, allowHTTP1: false })).toMatchObject({
      requestCert: false,
      allowHTTP1: false,
    });
    expect(rotationTlsOptions({ certPem: first.certPem, keyPem: first.keyPem }).ca).toEqual([]);
    expect(rotationTlsOptions(second)).toEqual({
      ...TLS_POLICY,
      cert: second.certPem,
      key: second.keyPem,
      ca: second.caPem,
    });
  });
});

describe('a server built from serverTlsOptions', () => {
  it('refuses a TLS 1.2 client before and after a certificate rotation through rotationTlsOptions', async () => {
    const { server, port } = await startServer(first);
    await expect(handshake(port, tls12)).rejects.toMatchObject({
      code: 'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION',
    });
    expect((await handshake(port, {})).fingerprint).toBe(fingerprint(first));

    server.setSecureContext(rotationTlsOptions(second));

    await expect(handshake(port, tls12)).rejects.toMatchObject({
      code: 'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION',
    });
    const after = await handshake(port, {});
    expect(after.protocol).toBe('TLSv1.3');
    expect(after.fingerprint).toBe(fingerprint(second));
  });

  it('accepts TLS 1.3 with each of the three allowed suites, before and after rotation', async () => {
    const { server, port } = await startServer(first);
    for (const material of [first, second]) {
      server.setSecureContext(rotationTlsOptions(material));
      for (const suite of TLS_CIPHER_SUITES) {
        const result = await handshake(port, { minVersion: 'TLSv1.3', ciphers: suite });
        expect(result).toEqual({ protocol: 'TLSv1.3', cipher: suite, fingerprint: fingerprint(material) });
      }
    }
  });

  it('still handshakes but authorizes no client certificate when given no caPem (an empty trust list, not the public roots)', async () => {
    const { port } = await startServer({ certPem: first.certPem, keyPem: first.keyPem });
    const client = await workerMaterial(ca, 'worker-3');
    expect(await http2Get(port, { cert: client.certPem, key: client.keyPem })).toMatchObject({
      authorized: false,
    });
  });

  it('refuses a TLS 1.3 client that only offers a suite outside the policy', async () => {
    const { port } = await startServer(first);
    await expect(handshake(port, { ciphers: 'TLS_AES_128_CCM_SHA256' })).rejects.toMatchObject({
      code: 'ERR_SSL_SSL/TLS_ALERT_HANDSHAKE_FAILURE',
    });
  });

  it('would accept TLS 1.2 again after a rotation that passes only the new certificate (why rotationTlsOptions exists)', async () => {
    const { server, port } = await startServer(first);
    server.setSecureContext({ cert: second.certPem, key: second.keyPem });
    const downgraded = await handshake(port, tls12);
    expect(downgraded.protocol).toBe('TLSv1.2');
  });

  it('serves HTTP/2 and tells handlers whether the client certificate is verified, without requiring one', async () => {
    const { port } = await startServer(first);
    const client = await workerMaterial(ca, 'worker-1');
    const stranger = await workerMaterial(
      await createCertificateAuthority({ trustDomain: 'sluice.test' }),
      'worker-1',
    );
    expect(await http2Get(port, { cert: client.certPem, key: client.keyPem })).toEqual({
      authorized: true,
      subject: 'worker-1',
    });
    expect(await http2Get(port, {})).toEqual({ authorized: false, subject: null });
    expect(await http2Get(port, { cert: stranger.certPem, key: stranger.keyPem })).toMatchObject({
      authorized: false,
    });
  });
});

describe('clientSecureContext', () => {
  it('connects to a policy server with TLS 1.3 and presents the client certificate', async () => {
    const { port } = await startServer(first);
    const client = await workerMaterial(ca, 'worker-2');
    const context = clientSecureContext({
      caPem: ca.certPem,
      certPem: client.certPem,
      keyPem: client.keyPem,
    });
    expect((await handshake(port, { secureContext: context })).protocol).toBe('TLSv1.3');
    expect(await http2Get(port, { secureContext: context })).toEqual({
      authorized: true,
      subject: 'worker-2',
    });
  });

  it('refuses a server that only speaks TLS 1.2', async () => {
    const legacy = createTlsServer(
      { cert: first.certPem, key: first.keyPem, maxVersion: 'TLSv1.2' },
      (socket) => socket.end(),
    );
    servers.push(legacy);
    legacy.listen(0, '127.0.0.1');
    await once(legacy, 'listening');
    const port = (legacy.address() as AddressInfo).port;
    // The same server is reachable with TLS 1.2, so the refusal below is the client policy's doing.
    expect((await handshake(port, tls12)).protocol).toBe('TLSv1.2');
    await expect(
      handshake(port, { secureContext: clientSecureContext({ caPem: ca.certPem }) }),
    ).rejects.toMatchObject({
      code: expect.stringMatching(/PROTOCOL_VERSION|UNSUPPORTED_PROTOCOL/),
    });
  });

  it('refuses a server whose certificate comes from another CA', async () => {
    const impostor = await createCertificateAuthority({ trustDomain: 'sluice.test' });
    const material = await impostor.issueServerCertificate({ hosts: ['localhost', '127.0.0.1'] });
    const { port } = await startServer({ certPem: material.certPem, keyPem: material.keyPem });
    await expect(
      handshake(port, { secureContext: clientSecureContext({ caPem: ca.certPem }) }),
    ).rejects.toMatchObject({
      code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
    });
  });

  it('refuses a certificate without its key, or a key without its certificate', () => {
    expect(() => clientSecureContext({ caPem: ca.certPem, certPem: first.certPem })).toThrow(TypeError);
    expect(() => clientSecureContext({ caPem: ca.certPem, keyPem: first.keyPem })).toThrow(TypeError);
  });
});
