import { mkdtemp, readFile, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { fileIdentityStore, type WorkerIdentity } from './worker-identity.ts';

const identity = (expiresInMs: number): WorkerIdentity => ({
  workerId: 'w-1',
  certPem: 'CERT',
  keyPem: 'KEY',
  issuerCaPem: 'CA',
  issuedAt: new Date(),
  expiresAt: new Date(Date.now() + expiresInMs),
});

describe('the file identity store', () => {
  it('keeps the identity readable by its owner only and loads it back', async () => {
    const dir = path.join(await mkdtemp(path.join(tmpdir(), 'sluice-identity-')), 'state');
    const store = fileIdentityStore(dir);
    expect(await store.load()).toBeUndefined();
    await store.save(identity(60_000));
    expect((await stat(path.join(dir, 'identity.json'))).mode & 0o777).toBe(0o600);
    expect((await stat(dir)).mode & 0o777).toBe(0o700);
    expect((await store.load())?.workerId).toBe('w-1');
    expect(await readFile(path.join(dir, 'identity.json'), 'utf8')).not.toContain('envelope');
  });

  it('reads a file written before the trust fix, whose caPem was the issuing internal CA', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'sluice-identity-'));
    const { issuerCaPem, ...rest } = identity(60_000);
    await writeFile(path.join(dir, 'identity.json'), JSON.stringify({ ...rest, caPem: issuerCaPem }));
    expect(await fileIdentityStore(dir).load()).toMatchObject({ workerId: 'w-1', issuerCaPem: 'CA' });
  });

  it('treats an expired certificate as no identity', async () => {
    const store = fileIdentityStore(await mkdtemp(path.join(tmpdir(), 'sluice-identity-')));
    await store.save(identity(-1));
    expect(await store.load()).toBeUndefined();
  });

  it('reports an unreadable identity by path and error code only', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'sluice-identity-'));
    await writeFile(path.join(dir, 'identity.json'), '{}');
    const store = fileIdentityStore(path.join(dir, 'identity.json'));
    await expect(store.load()).rejects.toThrow(
      /cannot read worker identity .*identity\.json\/identity\.json: ENOTDIR/,
    );
  });
});
