// Development TLS: when no certificate is configured, the internal CA issues a server certificate for the
// listen host and loopback names, kept in <dataDir>/tls (files 0600) and reused until near expiry. Clients
// trust <dataDir>/tls/ca.crt.
import { X509Certificate } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { CertificateAuthority, TlsMaterial } from '@sluice/crypto';

const RENEW_BEFORE_MS = 7 * 24 * 3_600_000;

export interface DevCertificatePaths {
  dir: string;
  cert: string;
  key: string;
  ca: string;
}

export function devCertificatePaths(dataDir: string): DevCertificatePaths {
  const dir = path.join(dataDir, 'tls');
  return {
    dir,
    cert: path.join(dir, 'server.crt'),
    key: path.join(dir, 'server.key'),
    ca: path.join(dir, 'ca.crt'),
  };
}

export async function ensureDevCertificates(
  dataDir: string,
  ca: CertificateAuthority,
  listenHost: string,
): Promise<TlsMaterial> {
  const paths = devCertificatePaths(dataDir);
  await mkdir(paths.dir, { recursive: true, mode: 0o700 });
  if (existsSync(paths.cert) && existsSync(paths.key) && existsSync(paths.ca)) {
    const [certPem, keyPem, caPem] = await Promise.all([
      readFile(paths.cert, 'utf8'),
      readFile(paths.key, 'utf8'),
      readFile(paths.ca, 'utf8'),
    ]);
    const cert = new X509Certificate(certPem);
    const fresh = Date.parse(cert.validTo) - Date.now() > RENEW_BEFORE_MS;
    // A changed listen address needs a certificate that names it.
    const namesHost =
      isWildcard(listenHost) || Boolean(cert.checkHost(listenHost) ?? cert.checkIP(listenHost));
    if (fresh && namesHost && caPem === ca.certPem && cert.verify(new X509Certificate(ca.certPem).publicKey))
      return { certPem, keyPem, caPem };
  }
  const hosts = [
    ...new Set(['localhost', '127.0.0.1', '::1', ...(isWildcard(listenHost) ? [] : [listenHost])]),
  ];
  const issued = await ca.issueServerCertificate({ hosts, validityDays: 90 });
  await writePrivate(paths.key, issued.keyPem);
  await writePrivate(paths.cert, issued.certPem);
  await writePrivate(paths.ca, ca.certPem);
  return { certPem: issued.certPem, keyPem: issued.keyPem, caPem: ca.certPem };
}

function isWildcard(host: string): boolean {
  return host === '0.0.0.0' || host === '::';
}

async function writePrivate(file: string, content: string): Promise<void> {
  await writeFile(file, content, { mode: 0o600 });
  await chmod(file, 0o600);
}
