import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createTestCa } from '@sluice/testkit';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadWorkerConfig } from './worker-config.ts';

let dir: string;
let caFile: string;
const token = 'tok_abcdefghijklmnopqrstuvwxyz012345';

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'sluice-worker-config-'));
  caFile = path.join(dir, 'ca.pem');
  await writeFile(caFile, (await createTestCa()).certPem);
  await writeFile(path.join(dir, 'token'), `${token}\n`);
  await writeFile(path.join(dir, 'not-a-cert.pem'), 'hello');
});

const base = () => ({ SLUICE_CONTROL_PLANE: 'https://cp.example.com:8443', SLUICE_CA_FILE: caFile });

describe('worker configuration', () => {
  it('resolves a complete environment, reading the token from its file', () => {
    const config = loadWorkerConfig({
      ...base(),
      SLUICE_BOOTSTRAP_TOKEN_FILE: path.join(dir, 'token'),
      SLUICE_WORKER_LABELS: 'zone=a,tier=gold',
      SLUICE_STATE_DIR: '/var/lib/sluice',
    });
    expect(config.controlPlane).toBe('cp.example.com:8443');
    expect(config.bootstrapToken?.use((t: string) => t)).toBe(token);
    expect(config.labels).toEqual({ zone: 'a', tier: 'gold' });
    expect(config.maxJobs).toBe(4);
    expect(JSON.stringify(config)).not.toContain(token);
  });

  it.each([
    [{ SLUICE_CONTROL_PLANE: undefined }, 'SLUICE_CONTROL_PLANE is required'],
    [{ SLUICE_CONTROL_PLANE: 'http://cp:8443' }, 'must use https://'],
    [{ SLUICE_CONTROL_PLANE: 'https://cp' }, 'must be https://host:port'],
    [{ SLUICE_CONTROL_PLANE: 'https://cp:99999' }, 'must be https://host:port'],
    [{ SLUICE_CONTROL_PLANE: 'https://cp:84;rm -rf /' }, 'must be https://host:port'],
    [{ SLUICE_CA_FILE: undefined }, 'SLUICE_CA_FILE is required'],
    [{ SLUICE_CA_FILE: '/nonexistent/ca.pem' }, 'SLUICE_CA_FILE: cannot read /nonexistent/ca.pem (ENOENT)'],
    [{ SLUICE_CA_FILE: 'NOT_A_CERT' }, 'does not hold a PEM certificate'],
    [{ SLUICE_BOOTSTRAP_TOKEN: 'short' }, 'is not a bootstrap token'],
    [{ SLUICE_BOOTSTRAP_TOKEN: "x'; drop table workers; --xxxxxxxx" }, 'is not a bootstrap token'],
    [{ SLUICE_BOOTSTRAP_TOKEN: token, SLUICE_BOOTSTRAP_TOKEN_FILE: '/x' }, 'not both'],
    [{ SLUICE_LOG_LEVEL: 'loud' }, 'SLUICE_LOG_LEVEL must be one of'],
    [{ SLUICE_MAX_JOBS: '0' }, 'SLUICE_MAX_JOBS must be a whole number'],
    [{ SLUICE_MAX_JOBS: '2.5' }, 'SLUICE_MAX_JOBS must be a whole number'],
    [{ SLUICE_WORKER_LABELS: 'novalue' }, 'SLUICE_WORKER_LABELS must be key=value'],
    [{ SLUICE_METRICS_LISTEN: 'localhost' }, 'SLUICE_METRICS_LISTEN must be host:port'],
  ])('refuses %j with a line naming the setting', (override, message) => {
    const env: Record<string, string | undefined> = { ...base(), ...override };
    if (env.SLUICE_CA_FILE === 'NOT_A_CERT') env.SLUICE_CA_FILE = path.join(dir, 'not-a-cert.pem');
    let error: Error | undefined;
    try {
      loadWorkerConfig(env);
    } catch (caught) {
      error = caught as Error;
    }
    expect(error?.name).toBe('ConfigError');
    expect(error?.message).toContain(message);
    expect(error?.message).not.toContain('drop table');
  });
});
