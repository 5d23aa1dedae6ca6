// Worker configuration from the environment (each also a CLI flag of `sluice worker`), validated once.
// An invalid setting stops start-up with one line naming it; no value is ever echoed.
import { readFileSync } from 'node:fs';
import { Secret } from '@sluice/crypto';

export interface WorkerConfig {
  /** `host:port` of the control plane. */
  controlPlane: string;
  caPem: string;
  bootstrapToken?: Secret<string>;
  /** Where the TLS identity is kept between restarts; undefined keeps it in memory. */
  stateDir?: string;
  logLevel: string;
  maxJobs: number;
  labels: Record<string, string>;
  /** `host:port` for the Prometheus endpoint; undefined disables it. */
  metricsListen?: string;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

const levels = new Set(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);

export function loadWorkerConfig(env: NodeJS.ProcessEnv = process.env): WorkerConfig {
  const controlPlane = parseControlPlane(required(env, 'SLUICE_CONTROL_PLANE'));
  const caPem = readPemFile(required(env, 'SLUICE_CA_FILE'), 'SLUICE_CA_FILE');
  const tokenFile = env.SLUICE_BOOTSTRAP_TOKEN_FILE;
  const tokenValue = env.SLUICE_BOOTSTRAP_TOKEN;
  if (tokenFile && tokenValue) {
    throw new ConfigError('set SLUICE_BOOTSTRAP_TOKEN_FILE or SLUICE_BOOTSTRAP_TOKEN, not both');
  }
  let bootstrapToken: Secret<string> | undefined;
  if (tokenFile) bootstrapToken = Secret.of(readSecretFile(tokenFile, 'SLUICE_BOOTSTRAP_TOKEN_FILE'));
  else if (tokenValue) bootstrapToken = Secret.of(tokenValue.trim());
  if (bootstrapToken && !/^[A-Za-z0-9_.-]{16,512}$/.test(bootstrapToken.use((t: string) => t))) {
    throw new ConfigError(
      'SLUICE_BOOTSTRAP_TOKEN is not a bootstrap token (16–512 characters of [A-Za-z0-9_.-])',
    );
  }
  const logLevel = env.SLUICE_LOG_LEVEL ?? 'info';
  if (!levels.has(logLevel))
    throw new ConfigError(`SLUICE_LOG_LEVEL must be one of ${[...levels].join(', ')}`);
  const maxJobs = Number(env.SLUICE_MAX_JOBS ?? 4);
  if (!Number.isInteger(maxJobs) || maxJobs < 1 || maxJobs > 256) {
    throw new ConfigError('SLUICE_MAX_JOBS must be a whole number from 1 to 256');
  }
  const metricsListen = env.SLUICE_METRICS_LISTEN;
  if (metricsListen !== undefined && !/^[^\s:]+:\d{1,5}$|^\[[0-9a-fA-F:]+\]:\d{1,5}$/.test(metricsListen)) {
    throw new ConfigError('SLUICE_METRICS_LISTEN must be host:port');
  }
  return {
    controlPlane,
    caPem,
    ...(bootstrapToken && { bootstrapToken }),
    ...(env.SLUICE_STATE_DIR && { stateDir: env.SLUICE_STATE_DIR }),
    logLevel,
    maxJobs,
    labels: parseLabels(env.SLUICE_WORKER_LABELS ?? ''),
    ...(metricsListen && { metricsListen }),
  };
}

function required(env: NodeJS.ProcessEnv, name: string): string {
  const value = env[name];
  if (!value) throw new ConfigError(`${name} is required`);
  return value;
}

/** Accepts `https://host:port`, `host:port` or `[v6]:port`; answers `host:port`. */
export function parseControlPlane(value: string): string {
  let rest = value.trim();
  if (rest.startsWith('https://')) rest = rest.slice('https://'.length).replace(/\/$/, '');
  else if (/^[a-z]+:\/\//i.test(rest))
    throw new ConfigError('SLUICE_CONTROL_PLANE must use https:// (TLS 1.3 only)');
  const match = /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]{1,253}):(\d{1,5})$/.exec(rest);
  const port = Number(match?.[2]);
  if (!match || port < 1 || port > 65535)
    throw new ConfigError('SLUICE_CONTROL_PLANE must be https://host:port');
  return rest;
}

function readPemFile(file: string, name: string): string {
  const text = readSecretFile(file, name);
  if (!text.includes('-----BEGIN CERTIFICATE-----'))
    throw new ConfigError(`${name} does not hold a PEM certificate`);
  return text;
}

function readSecretFile(file: string, name: string): string {
  try {
    return readFileSync(file, 'utf8').trim();
  } catch (error) {
    throw new ConfigError(
      `${name}: cannot read ${file} (${(error as NodeJS.ErrnoException).code ?? 'error'})`,
    );
  }
}

function parseLabels(text: string): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const pair of text.split(',').filter(Boolean)) {
    const match = /^([A-Za-z0-9_./-]{1,63})=([A-Za-z0-9_./-]{0,63})$/.exec(pair.trim());
    if (!match?.[1])
      throw new ConfigError('SLUICE_WORKER_LABELS must be key=value pairs separated by commas');
    labels[match[1]] = match[2] ?? '';
  }
  return labels;
}
