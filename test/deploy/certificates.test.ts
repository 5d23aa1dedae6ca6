import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Tool } from './tools.ts';
import { announceSkip } from './tools.ts';

// deploy/gen-certs.sh is what the compose `certs` service runs (as root, in the postgres image). Here it
// runs into a temporary directory; it needs openssl, and root to give keys to their services' users.
const root = path.resolve(import.meta.dirname, '../..');
const openssl = spawnSync('openssl', ['version'], { encoding: 'utf8' });
const tool: Tool =
  openssl.status !== 0
    ? { available: false, reason: 'openssl is not installed' }
    : process.getuid?.() !== 0
      ? { available: false, reason: 'not root, so keys cannot be given to uid 999 and 10001' }
      : { available: true, reason: '' };
announceSkip('the certificate generation checks', tool);

const dir = tool.available ? mkdtempSync(path.join(tmpdir(), 'sluice-certs-')) : '';
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function generate(): void {
  const result = spawnSync('sh', [path.join(root, 'deploy/gen-certs.sh'), dir], { encoding: 'utf8' });
  expect(result.status, result.stderr).toBe(0);
}

const certificate = (file: string) => new X509Certificate(readFileSync(path.join(dir, file)));

describe('deploy/gen-certs.sh', () => {
  beforeAll(() => {
    if (tool.available) generate();
  });

  it.skipIf(!tool.available)('issues each service a certificate from the demo CA, for its own name', () => {
    const ca = certificate('ca/ca.crt');
    const expected: Array<[string, string]> = [
      ['control-plane/tls.crt', 'DNS:control-plane, DNS:localhost, IP Address:127.0.0.1'],
      ['source-db/server.crt', 'DNS:source-db'],
      ['catalog-db/server.crt', 'DNS:catalog-db'],
      ['control-plane/catalog-client.crt', ''],
      ['setup/catalog-client.crt', ''],
    ];
    for (const [file, names] of expected) {
      const cert = certificate(file);
      expect(cert.verify(ca.publicKey), file).toBe(true);
      expect(cert.ca).toBe(false);
      if (names) expect(cert.subjectAltName ?? '', file).toContain(names);
      else expect(cert.subject, file).toBe('CN=sluice');
    }
    for (const copy of ['public/ca.crt', 'control-plane/ca.crt', 'catalog-db/ca.crt', 'setup/ca.crt']) {
      expect(certificate(copy).fingerprint256).toBe(ca.fingerprint256);
    }
  });

  it.skipIf(!tool.available)('gives every key only to the user of the service that uses it', () => {
    const owners: Array<[string, number]> = [
      ['control-plane/tls.key', 10001],
      ['control-plane/catalog-client.key', 10001],
      ['setup/catalog-client.key', 10001],
      ['source-db/server.key', 999],
      ['catalog-db/server.key', 999],
    ];
    for (const [file, uid] of owners) {
      const stat = statSync(path.join(dir, file));
      expect({ file, uid: stat.uid, mode: stat.mode & 0o777 }).toEqual({ file, uid, mode: 0o600 });
    }
    expect(statSync(path.join(dir, 'ca')).mode & 0o077).toBe(0);
    expect(statSync(path.join(dir, 'ca/ca.key')).mode & 0o077).toBe(0);
  });

  it.skipIf(!tool.available)('keeps valid certificates when it runs again', () => {
    const before = readFileSync(path.join(dir, 'control-plane/tls.crt'), 'utf8');
    generate();
    expect(readFileSync(path.join(dir, 'control-plane/tls.crt'), 'utf8')).toBe(before);
  });
});
