import { spawnSync } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { generateEncryptionKey } from '@sluice/crypto';
import { describe, expect, it } from 'vitest';
import { ConfigError, hostAllowed, loadConfig } from './config.ts';

const KEY = generateEncryptionKey();
const JWT = generateEncryptionKey();
const base = {
  CONFIG_ENCRYPTION_KEY: KEY,
  JWT_SECRET: JWT,
  DATABASE_URL: 'postgres://cp@db.internal:5432/sluice',
};

function refusal(env: Record<string, string>): ConfigError {
  try {
    loadConfig(env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error('expected the configuration to be refused');
}

describe('control-plane configuration', () => {
  it('reads SLUICE_DATASOURCE_HOSTS as host patterns; unset allows any host', () => {
    expect(loadConfig(base).datasourceHosts).toBeUndefined();
    const patterns = loadConfig({ ...base, SLUICE_DATASOURCE_HOSTS: ' *.db.internal, 10.0.* ' })
      .datasourceHosts!;
    expect(patterns).toEqual(['*.db.internal', '10.0.*']);
    expect(hostAllowed(patterns, 'PG.db.internal')).toBe(true);
    expect(hostAllowed(patterns, '10.0.3.4')).toBe(true);
    expect(hostAllowed(patterns, 'db.internal')).toBe(false);
    expect(hostAllowed(patterns, 'x.db.internal.evil.com')).toBe(false);
    expect(hostAllowed(patterns, '10.01.3.4')).toBe(false);
    expect(refusal({ ...base, SLUICE_DATASOURCE_HOSTS: 'a,,b' }).message).toMatch(
      /^SLUICE_DATASOURCE_HOSTS: /,
    );
    expect(refusal({ ...base, SLUICE_DATASOURCE_HOSTS: 'db/*' }).message).toMatch(
      /^SLUICE_DATASOURCE_HOSTS: /,
    );
  });

  it('resolves defaults from a minimal environment', () => {
    const config = loadConfig(base);
    expect(config.listen).toEqual({ host: '127.0.0.1', port: 8443 });
    expect(config.accessTokenTtlMs).toBe(600_000);
    expect(config.catalog).toEqual({ kind: 'url', url: base.DATABASE_URL });
    expect(config.tls).toBeUndefined();
    expect(config.trustDomain).toBe('sluice.local');
    expect(config.jwtSecret.length).toBe(32);
  });

  it('uses the embedded catalog in the data directory when DATABASE_URL is unset', () => {
    const config = loadConfig({
      CONFIG_ENCRYPTION_KEY: KEY,
      JWT_SECRET: JWT,
      SLUICE_DATA_DIR: '/var/lib/sluice',
    });
    expect(config.catalog).toEqual({ kind: 'embedded', dataDir: '/var/lib/sluice' });
  });

  it('reads secrets from *_FILE settings', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'sluice-config-'));
    await writeFile(path.join(dir, 'jwt'), `${JWT}\n`, { mode: 0o600 });
    const config = loadConfig({ CONFIG_ENCRYPTION_KEY: KEY, JWT_SECRET_FILE: path.join(dir, 'jwt') });
    expect(Buffer.from(config.jwtSecret).toString('hex')).toBe(JWT);
  });

  it.each([
    [{ ...base, CONFIG_ENCRYPTION_KEY: '' }, 'CONFIG_ENCRYPTION_KEY', /CONFIG_ENCRYPTION_KEY/],
    [{ ...base, CONFIG_ENCRYPTION_KEY: 'abc' }, 'CONFIG_ENCRYPTION_KEY', /64 hex characters/],
    [{ ...base, JWT_SECRET: '' }, 'JWT_SECRET', /^JWT_SECRET: is required/],
    [{ ...base, JWT_SECRET: 'short' }, 'JWT_SECRET', /^JWT_SECRET: must be at least 256 bits/],
    [{ ...base, JWT_SECRET: 'not base64 at all!' }, 'JWT_SECRET', /^JWT_SECRET: must be hex or base64/],
    [{ ...base, JWT_SECRET_FILE: '/nonexistent' }, 'JWT_SECRET', /^JWT_SECRET: set either/],
    [{ ...base, DATABASE_URL: 'mysql://x@y/z' }, 'DATABASE_URL', /^DATABASE_URL: must be a postgres/],
    [{ ...base, SLUICE_LISTEN: 'localhost' }, 'SLUICE_LISTEN', /^SLUICE_LISTEN: expected host:port/],
    [{ ...base, SLUICE_LISTEN: '127.0.0.1:70000' }, 'SLUICE_LISTEN', /^SLUICE_LISTEN:/],
    [{ ...base, SLUICE_TLS_CERT: '/etc/cert.pem' }, 'SLUICE_TLS_KEY', /go together/],
    [
      { ...base, SLUICE_TLS_CERT: '/nonexistent.pem', SLUICE_TLS_KEY: '/nonexistent.key' },
      'SLUICE_TLS_CERT',
      /not readable/,
    ],
    [{ ...base, SLUICE_TRUST_DOMAIN: 'Not A Domain' }, 'SLUICE_TRUST_DOMAIN', /DNS name/],
    [
      { ...base, SLUICE_ACCESS_TOKEN_TTL: 'forever' },
      'SLUICE_ACCESS_TOKEN_TTL',
      /^SLUICE_ACCESS_TOKEN_TTL: expected a duration/,
    ],
    [
      { ...base, SLUICE_ACCESS_TOKEN_TTL: '2d' },
      'SLUICE_ACCESS_TOKEN_TTL',
      /^SLUICE_ACCESS_TOKEN_TTL: must be between/,
    ],
    [{ ...base, TOKEN_TTL: '1s' }, 'TOKEN_TTL', /^TOKEN_TTL: must be between/],
    [
      { ...base, SLUICE_HEARTBEAT_INTERVAL: 'often' },
      'SLUICE_HEARTBEAT_INTERVAL',
      /^SLUICE_HEARTBEAT_INTERVAL: expected a duration/,
    ],
    [{ ...base, SLUICE_ADMIN_USERNAME: 'root' }, 'SLUICE_ADMIN_PASSWORD', /go together/],
    [{ ...base, SLUICE_LOG_LEVEL: 'loud' }, 'SLUICE_LOG_LEVEL', /SLUICE_LOG_LEVEL/],
  ] as Array<[Record<string, string>, string, RegExp]>)(
    'refuses %# with one line naming the setting',
    (env, setting, message) => {
      const error = refusal(env);
      expect(error.setting).toBe(setting);
      expect(error.message).toMatch(message);
      expect(error.message).not.toContain('\n');
      expect(error.message).not.toContain(KEY);
      expect(error.message).not.toContain(JWT);
    },
  );

  it('stops main.ts with exit code 2 and one line naming the setting', () => {
    const run = spawnSync(process.execPath, [path.join(import.meta.dirname, 'main.ts')], {
      env: { PATH: process.env.PATH, CONFIG_ENCRYPTION_KEY: KEY, JWT_SECRET: 'too-short' },
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(run.status).toBe(2);
    expect(run.stderr.trim().split('\n')).toEqual([
      'sluice control plane: invalid configuration: JWT_SECRET: must be at least 256 bits (64 hex or 43 base64 characters)',
    ]);
    expect(run.stderr).not.toContain(KEY);
  });
});
