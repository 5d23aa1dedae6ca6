// Environment → validated, resolved control-plane settings, once, at start. Every problem is a ConfigError
// whose message is one line naming the setting; values are never echoed (they may be secrets).
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import path from 'node:path';
import { type Keyring, loadKeyring } from '@sluice/crypto';
import type { LoginLimits } from './auth/login-guard.ts';
import type { CatalogSource } from './catalog/catalog.ts';

export interface FileTlsMaterial {
  certPem: string;
  keyPem: string;
  /** SLUICE_TLS_CA: the CA bundle that issued certPem, handed to clients that need to trust it. */
  caPem?: string;
}

export interface ControlPlaneConfig {
  /** SLUICE_LISTEN (default 127.0.0.1:8443); port 0 picks a free port. */
  listen: { host: string; port: number };
  /**
   * SLUICE_METRICS_LISTEN (unset: off): a plain-HTTP listener with unauthenticated /metrics and /healthz, for
   * a scraper without an access token; loopback or a monitoring-only network.
   */
  metricsListen?: { host: string; port: number };
  /** SLUICE_DATA_DIR (default ./.sluice): embedded catalog and dev certificates. */
  dataDir: string;
  /** DATABASE_URL, or the embedded catalog under dataDir. */
  catalog: CatalogSource;
  /** CONFIG_ENCRYPTION_KEY[_FILE] and CONFIG_ENCRYPTION_PREVIOUS_KEYS[_FILE]. */
  keyring: Keyring;
  /** JWT_SECRET[_FILE]: at least 256 bits. */
  jwtSecret: Uint8Array;
  /** SLUICE_TLS_CERT/KEY/CA files; undefined → dev certificates from the internal CA, kept in dataDir. */
  tls: FileTlsMaterial | undefined;
  /** SLUICE_TRUST_DOMAIN (default sluice.local): the SPIFFE trust domain of worker certificates. */
  trustDomain: string;
  /** SLUICE_ACCESS_TOKEN_TTL (default 10m): access token lifetime. */
  accessTokenTtlMs: number;
  /** SLUICE_REFRESH_TOKEN_TTL (default 7d). */
  refreshTokenTtlMs: number;
  /** SLUICE_SESSION_TTL (default 30d): absolute lifetime of a login (refresh-token family). */
  sessionTtlMs?: number;
  /**
   * SLUICE_LOGIN_MAX_FAILURES (5), SLUICE_LOGIN_LOCKOUT (1m), SLUICE_LOGIN_RATE_PER_IP (30/min),
   * SLUICE_LOGIN_RATE_PER_USER (10/min), SLUICE_LOGIN_AUDIT_WINDOW (1m); defaults when absent.
   */
  login?: LoginLimits;
  /** TOKEN_TTL (default 60s): how long a sealed credential envelope may be opened (the design's name). */
  envelopeTtlMs: number;
  /** SLUICE_HEARTBEAT_INTERVAL (default 5s): how often workers heartbeat; a lease lives three intervals. */
  heartbeatIntervalMs: number;
  /** SLUICE_WORKER_CERT_TTL (default 1h): lifetime of worker client certificates; workers renew at half-life. */
  workerCertificateTtlMs: number;
  /** SLUICE_ADMIN_USERNAME + SLUICE_ADMIN_PASSWORD[_FILE]: creates the first admin once, if none exists. */
  firstAdmin: { username: string; password: string } | undefined;
  /** SLUICE_LOG_LEVEL (default info). */
  logLevel: string;
  /**
   * SLUICE_DATASOURCE_HOSTS: comma-separated host patterns (`*` = any run of characters, case-insensitive)
   * that datasources may name, e.g. `*.db.internal,10.0.*`; undefined (unset) = any host.
   */
  datasourceHosts?: readonly string[];
}

export class ConfigError extends Error {
  readonly setting: string;
  /** `named`: the problem text already names the setting (the keyring's messages do). */
  constructor(setting: string, problem: string, named = false) {
    super(named ? problem : `${setting}: ${problem}`);
    this.name = 'ConfigError';
    this.setting = setting;
  }
}

type Env = Record<string, string | undefined>;

/** NAME or NAME_FILE (exactly one), trimmed; undefined when neither is set. */
function fromEnvOrFile(env: Env, name: string): string | undefined {
  const direct = env[name];
  const file = env[`${name}_FILE`];
  if (direct && file) throw new ConfigError(name, `set either ${name} or ${name}_FILE, not both`);
  if (file) {
    try {
      return readFileSync(file, 'utf8').trim();
    } catch {
      throw new ConfigError(`${name}_FILE`, 'file is not readable');
    }
  }
  return direct?.trim() || undefined;
}

function readPemFile(setting: string, file: string): string {
  try {
    const text = readFileSync(file, 'utf8');
    if (!text.includes('-----BEGIN ')) throw new ConfigError(setting, 'file is not PEM');
    return text;
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    throw new ConfigError(setting, 'file is not readable');
  }
}

function parseListen(value: string, setting = 'SLUICE_LISTEN'): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(value);
  const host = match?.[1] ?? match?.[2];
  const port = Number(match?.[3]);
  if (!match || !host || port > 65535)
    throw new ConfigError(setting, 'expected host:port or [ipv6]:port with a port 0–65535');
  if (match[1] && isIP(host) !== 6) throw new ConfigError(setting, 'bracketed host is not an IPv6 address');
  return { host, port };
}

/** `90`, `90s`, `10m`, `2h`, `7d` → milliseconds. */
function parseDuration(setting: string, value: string, min: number, max: number): number {
  const match = /^(\d+)(ms|s|m|h|d)?$/.exec(value.trim());
  if (!match) throw new ConfigError(setting, 'expected a duration such as 600, 600s, 10m or 1h');
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[match[2] ?? 's'] ?? 1000;
  const ms = Number(match[1]) * unit;
  if (ms < min || ms > max)
    throw new ConfigError(setting, `must be between ${min / 1000}s and ${max / 1000}s`);
  return ms;
}

/** A whole number in [min, max]. */
function parseCount(setting: string, value: string, min: number, max: number): number {
  if (!/^\d+$/.test(value.trim())) throw new ConfigError(setting, 'expected a whole number');
  const count = Number(value.trim());
  if (count < min || count > max) throw new ConfigError(setting, `must be between ${min} and ${max}`);
  return count;
}

/** 64+ hex characters, or base64/base64url decoding to 32+ bytes. */
function parseJwtSecret(value: string): Uint8Array {
  let bytes: Buffer;
  if (/^[0-9a-fA-F]+$/.test(value) && value.length % 2 === 0) bytes = Buffer.from(value, 'hex');
  else if (/^[A-Za-z0-9+/_-]+={0,2}$/.test(value)) bytes = Buffer.from(value, 'base64');
  else throw new ConfigError('JWT_SECRET', 'must be hex or base64 encoded');
  if (bytes.length < 32)
    throw new ConfigError('JWT_SECRET', 'must be at least 256 bits (64 hex or 43 base64 characters)');
  return new Uint8Array(bytes);
}

export function loadConfig(env: Env = process.env): ControlPlaneConfig {
  const dataDir = path.resolve(env.SLUICE_DATA_DIR || '.sluice');

  let keyring: Keyring;
  try {
    keyring = loadKeyring(env as NodeJS.ProcessEnv);
  } catch (error) {
    // KeyringError messages name the setting and never contain key material.
    const code = (error as { code?: string }).code;
    const setting = code === 'KEY_FILE_UNREADABLE' ? 'CONFIG_ENCRYPTION_KEY_FILE' : 'CONFIG_ENCRYPTION_KEY';
    throw new ConfigError(setting, (error as Error).message, true);
  }

  const jwtRaw = fromEnvOrFile(env, 'JWT_SECRET');
  if (!jwtRaw) throw new ConfigError('JWT_SECRET', 'is required (or JWT_SECRET_FILE)');
  const jwtSecret = parseJwtSecret(jwtRaw);

  let catalog: CatalogSource;
  const databaseUrl = fromEnvOrFile(env, 'DATABASE_URL');
  if (databaseUrl) {
    let url: URL;
    try {
      url = new URL(databaseUrl);
    } catch {
      throw new ConfigError('DATABASE_URL', 'is not a valid URL');
    }
    if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:')
      throw new ConfigError('DATABASE_URL', 'must be a postgres:// or postgresql:// URL');
    catalog = { kind: 'url', url: databaseUrl };
  } else {
    catalog = { kind: 'embedded', dataDir };
  }

  const listen = parseListen(env.SLUICE_LISTEN || '127.0.0.1:8443');
  const metricsListen = env.SLUICE_METRICS_LISTEN
    ? parseListen(env.SLUICE_METRICS_LISTEN, 'SLUICE_METRICS_LISTEN')
    : undefined;

  const certFile = env.SLUICE_TLS_CERT;
  const keyFile = env.SLUICE_TLS_KEY;
  if (Boolean(certFile) !== Boolean(keyFile))
    throw new ConfigError(
      certFile ? 'SLUICE_TLS_KEY' : 'SLUICE_TLS_CERT',
      'SLUICE_TLS_CERT and SLUICE_TLS_KEY go together',
    );
  let tls: FileTlsMaterial | undefined;
  if (certFile && keyFile) {
    tls = {
      certPem: readPemFile('SLUICE_TLS_CERT', certFile),
      keyPem: readPemFile('SLUICE_TLS_KEY', keyFile),
    };
    if (env.SLUICE_TLS_CA) tls.caPem = readPemFile('SLUICE_TLS_CA', env.SLUICE_TLS_CA);
  } else if (env.SLUICE_TLS_CA) {
    throw new ConfigError('SLUICE_TLS_CA', 'needs SLUICE_TLS_CERT and SLUICE_TLS_KEY');
  }

  const trustDomain = env.SLUICE_TRUST_DOMAIN || 'sluice.local';
  if (!/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/.test(trustDomain))
    throw new ConfigError('SLUICE_TRUST_DOMAIN', 'must be a lower-case DNS name such as sluice.example.com');

  const accessTokenTtlMs = parseDuration(
    'SLUICE_ACCESS_TOKEN_TTL',
    env.SLUICE_ACCESS_TOKEN_TTL || '10m',
    30_000,
    24 * 3_600_000,
  );
  const refreshTokenTtlMs = parseDuration(
    'SLUICE_REFRESH_TOKEN_TTL',
    env.SLUICE_REFRESH_TOKEN_TTL || '7d',
    60_000,
    90 * 86_400_000,
  );

  const sessionTtlMs = parseDuration(
    'SLUICE_SESSION_TTL',
    env.SLUICE_SESSION_TTL || '30d',
    10_000,
    365 * 86_400_000,
  );
  const login: LoginLimits = {
    maxFailures: parseCount('SLUICE_LOGIN_MAX_FAILURES', env.SLUICE_LOGIN_MAX_FAILURES || '5', 1, 1000),
    lockoutMs: parseDuration('SLUICE_LOGIN_LOCKOUT', env.SLUICE_LOGIN_LOCKOUT || '1m', 1000, 86_400_000),
    ipPerMinute: parseCount('SLUICE_LOGIN_RATE_PER_IP', env.SLUICE_LOGIN_RATE_PER_IP || '30', 1, 1_000_000),
    userPerMinute: parseCount(
      'SLUICE_LOGIN_RATE_PER_USER',
      env.SLUICE_LOGIN_RATE_PER_USER || '10',
      1,
      1_000_000,
    ),
    auditWindowMs: parseDuration(
      'SLUICE_LOGIN_AUDIT_WINDOW',
      env.SLUICE_LOGIN_AUDIT_WINDOW || '1m',
      1000,
      3_600_000,
    ),
  };

  const envelopeTtlMs = parseDuration('TOKEN_TTL', env.TOKEN_TTL || '60s', 5_000, 600_000);
  const workerCertificateTtlMs = parseDuration(
    'SLUICE_WORKER_CERT_TTL',
    env.SLUICE_WORKER_CERT_TTL || '1h',
    10_000,
    30 * 86_400_000,
  );
  const heartbeatIntervalMs = parseDuration(
    'SLUICE_HEARTBEAT_INTERVAL',
    env.SLUICE_HEARTBEAT_INTERVAL || '5s',
    100,
    300_000,
  );

  const adminUser = env.SLUICE_ADMIN_USERNAME;
  const adminPassword = fromEnvOrFile(env, 'SLUICE_ADMIN_PASSWORD');
  if (Boolean(adminUser) !== Boolean(adminPassword))
    throw new ConfigError(
      adminUser ? 'SLUICE_ADMIN_PASSWORD' : 'SLUICE_ADMIN_USERNAME',
      'SLUICE_ADMIN_USERNAME and SLUICE_ADMIN_PASSWORD go together',
    );
  if (adminPassword && adminPassword.length < 12)
    throw new ConfigError('SLUICE_ADMIN_PASSWORD', 'must be at least 12 characters');

  const logLevel = env.SLUICE_LOG_LEVEL || 'info';
  if (!['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'].includes(logLevel))
    throw new ConfigError('SLUICE_LOG_LEVEL', 'must be trace, debug, info, warn, error, fatal or silent');

  const datasourceHosts = parseHostPatterns(env.SLUICE_DATASOURCE_HOSTS);

  return {
    listen,
    dataDir,
    catalog,
    keyring,
    jwtSecret,
    tls,
    trustDomain,
    accessTokenTtlMs,
    refreshTokenTtlMs,
    sessionTtlMs,
    login,
    envelopeTtlMs,
    heartbeatIntervalMs,
    workerCertificateTtlMs,
    firstAdmin: adminUser && adminPassword ? { username: adminUser, password: adminPassword } : undefined,
    logLevel,
    ...(datasourceHosts && { datasourceHosts }),
    ...(metricsListen && { metricsListen }),
  };
}

/** SLUICE_DATASOURCE_HOSTS: patterns of host-name characters and `*`; unset or blank = no restriction. */
function parseHostPatterns(value: string | undefined): string[] | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  const patterns = value.split(',').map((item) => item.trim());
  for (const pattern of patterns) {
    if (pattern === '')
      throw new ConfigError('SLUICE_DATASOURCE_HOSTS', 'has an empty pattern (two commas in a row?)');
    if (pattern.length > 253 || !/^[A-Za-z0-9.:*[\]-]+$/.test(pattern))
      throw new ConfigError(
        'SLUICE_DATASOURCE_HOSTS',
        'patterns may hold only host-name or IP address characters and *, e.g. *.db.internal,10.0.*',
      );
  }
  return patterns;
}

/** Whether `host` matches one of the SLUICE_DATASOURCE_HOSTS patterns (`*` = any run of characters). */
export function hostAllowed(patterns: readonly string[], host: string): boolean {
  const name = host.toLowerCase();
  return patterns.some((pattern) => {
    const regex = pattern
      .toLowerCase()
      .split('*')
      .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
      .join('.*');
    return new RegExp(`^${regex}$`).test(name);
  });
}
