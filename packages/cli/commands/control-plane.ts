// `sluice control-plane`: runs the control plane. Each flag mirrors one environment variable of the control
// plane's configuration (packages/control-plane/config.ts); a flag wins over the variable. Secrets are taken
// as files only, so none sits in the process's argument list.
import { usageError } from '../cli-error.ts';
import { type CommandSpec, type FlagSpec, stringFlag } from '../command-table.ts';

export const CONTROL_PLANE_FLAGS: Record<string, FlagSpec> = {
  listen: {
    type: 'string',
    value: 'HOST:PORT',
    env: 'SLUICE_LISTEN',
    default: '127.0.0.1:8443',
    description: 'TLS 1.3 listen address; port 0 picks one',
  },
  'metrics-listen': {
    type: 'string',
    value: 'HOST:PORT',
    env: 'SLUICE_METRICS_LISTEN',
    description: 'plain-HTTP /metrics and /healthz without a token (off when unset; keep it on loopback)',
  },
  'data-dir': {
    type: 'string',
    value: 'DIR',
    env: 'SLUICE_DATA_DIR',
    default: './.sluice',
    description: 'embedded catalog and dev certificates',
  },
  'database-url': {
    type: 'string',
    value: 'URL',
    env: 'DATABASE_URL',
    description: 'catalog PostgreSQL without a password in it (embedded when unset)',
  },
  'database-url-file': {
    type: 'string',
    value: 'FILE',
    env: 'DATABASE_URL_FILE',
    description: 'catalog URL read from FILE (may hold a password)',
  },
  'encryption-key-file': {
    type: 'string',
    value: 'FILE',
    env: 'CONFIG_ENCRYPTION_KEY_FILE',
    description: 'at-rest key, 64 hex characters (or CONFIG_ENCRYPTION_KEY)',
  },
  'previous-keys-file': {
    type: 'string',
    value: 'FILE',
    env: 'CONFIG_ENCRYPTION_PREVIOUS_KEYS_FILE',
    description: 'older keys, comma-separated, still decrypted',
  },
  'jwt-secret-file': {
    type: 'string',
    value: 'FILE',
    env: 'JWT_SECRET_FILE',
    description: 'JWT signing secret, at least 256 bits (or JWT_SECRET)',
  },
  'tls-cert': {
    type: 'string',
    value: 'FILE',
    env: 'SLUICE_TLS_CERT',
    description: 'server certificate PEM (dev certificates when unset)',
  },
  'tls-key': { type: 'string', value: 'FILE', env: 'SLUICE_TLS_KEY', description: 'server key PEM' },
  'tls-ca': {
    type: 'string',
    value: 'FILE',
    env: 'SLUICE_TLS_CA',
    description: 'CA bundle that issued --tls-cert',
  },
  'trust-domain': {
    type: 'string',
    value: 'NAME',
    env: 'SLUICE_TRUST_DOMAIN',
    default: 'sluice.local',
    description: 'SPIFFE trust domain of worker certificates',
  },
  'access-token-ttl': {
    type: 'string',
    value: 'DURATION',
    env: 'SLUICE_ACCESS_TOKEN_TTL',
    default: '10m',
    description: 'access token lifetime',
  },
  'refresh-token-ttl': {
    type: 'string',
    value: 'DURATION',
    env: 'SLUICE_REFRESH_TOKEN_TTL',
    default: '7d',
    description: 'refresh token lifetime',
  },
  'session-ttl': {
    type: 'string',
    value: 'DURATION',
    env: 'SLUICE_SESSION_TTL',
    default: '30d',
    description: 'absolute lifetime of a login; after it refresh fails',
  },
  'login-max-failures': {
    type: 'string',
    value: 'N',
    env: 'SLUICE_LOGIN_MAX_FAILURES',
    default: '5',
    description: 'failed logins of one user name before it locks',
  },
  'login-lockout': {
    type: 'string',
    value: 'DURATION',
    env: 'SLUICE_LOGIN_LOCKOUT',
    default: '1m',
    description: 'first lockout; each one in a row lasts twice as long (at most 64x)',
  },
  'login-rate-per-ip': {
    type: 'string',
    value: 'N',
    env: 'SLUICE_LOGIN_RATE_PER_IP',
    default: '30',
    description: 'login attempts per minute per client IP',
  },
  'login-rate-per-user': {
    type: 'string',
    value: 'N',
    env: 'SLUICE_LOGIN_RATE_PER_USER',
    default: '10',
    description: 'login attempts per minute per user name',
  },
  'login-audit-window': {
    type: 'string',
    value: 'DURATION',
    env: 'SLUICE_LOGIN_AUDIT_WINDOW',
    default: '1m',
    description: 'failed logins are audited as one row per user and IP per window',
  },
  'token-ttl': {
    type: 'string',
    value: 'DURATION',
    env: 'TOKEN_TTL',
    default: '60s',
    description: 'how long a sealed credential envelope may be opened',
  },
  'heartbeat-interval': {
    type: 'string',
    value: 'DURATION',
    env: 'SLUICE_HEARTBEAT_INTERVAL',
    default: '5s',
    description: 'worker heartbeat interval; a lease lives three',
  },
  'worker-cert-ttl': {
    type: 'string',
    value: 'DURATION',
    env: 'SLUICE_WORKER_CERT_TTL',
    default: '1h',
    description: 'lifetime of worker client certificates; workers renew at half-life',
  },
  'datasource-hosts': {
    type: 'string',
    value: 'PATTERNS',
    env: 'SLUICE_DATASOURCE_HOSTS',
    description:
      'comma-separated host patterns datasources may name, e.g. *.db.internal,10.0.* (default any)',
  },
  'admin-username': {
    type: 'string',
    value: 'NAME',
    env: 'SLUICE_ADMIN_USERNAME',
    description: 'create this first admin at start if none exists',
  },
  'admin-password-file': {
    type: 'string',
    value: 'FILE',
    env: 'SLUICE_ADMIN_PASSWORD_FILE',
    description: "that admin's password (or SLUICE_ADMIN_PASSWORD)",
  },
  'log-level': {
    type: 'string',
    value: 'LEVEL',
    env: 'SLUICE_LOG_LEVEL',
    default: 'info',
    description: 'trace, debug, info, warn, error, fatal or silent',
  },
};

export const controlPlaneCommand: CommandSpec = {
  name: 'control-plane',
  summary: 'Run the control plane (catalog, admin and worker APIs on one TLS 1.3 port)',
  description:
    'Needs an encryption key and a JWT secret; everything else has a default. Invalid configuration stops\n' +
    'start-up with one line naming the setting (exit 2). SIGINT/SIGTERM stop it gracefully.',
  flags: CONTROL_PLANE_FLAGS,
  examples: [
    'sluice control-plane --encryption-key-file key --jwt-secret-file jwt --listen 0.0.0.0:8443 \\\n' +
      '    --tls-cert tls.crt --tls-key tls.key --database-url-file catalog.url',
  ],
  async run(context) {
    for (const [flag, spec] of Object.entries(CONTROL_PLANE_FLAGS)) {
      const value = stringFlag(context.flags, flag);
      if (value === undefined || !spec.env || value === context.env[spec.env]) continue;
      if (flag === 'database-url' && /^[^:]+:\/\/[^/@]*:[^/@]*@/.test(value))
        throw usageError('--database-url must not hold a password: use --database-url-file');
      process.env[spec.env] = value;
    }
    // runControlPlane does the wiring (config, worker routes, signals) in one place; this command only maps
    // flags onto its environment. It runs until a signal ends the process.
    const { runControlPlane } = await import('@sluice/control-plane');
    await runControlPlane(process.env);
    return new Promise<number>(() => undefined);
  },
};
