import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { announceSkip, dockerComposeTool } from './tools.ts';

const root = path.resolve(import.meta.dirname, '../..');

// The only settings a Sluice process is given (DESIGN.md, Configuration). Secrets only as *_FILE.
const CONTROL_PLANE_ENV = [
  'CONFIG_ENCRYPTION_KEY_FILE',
  'CONFIG_ENCRYPTION_PREVIOUS_KEYS_FILE',
  'JWT_SECRET_FILE',
  'DATABASE_URL',
  'SLUICE_LISTEN',
  'SLUICE_TLS_CERT',
  'SLUICE_TLS_KEY',
  'SLUICE_TLS_CA',
  'SLUICE_TRUST_DOMAIN',
  'SLUICE_DATA_DIR',
  'TOKEN_TTL',
  'SLUICE_LOG_LEVEL',
] as const;
const WORKER_ENV = [
  'SLUICE_CONTROL_PLANE',
  'SLUICE_BOOTSTRAP_TOKEN_FILE',
  'SLUICE_CA_FILE',
  'SLUICE_STATE_DIR',
  'SLUICE_LOG_LEVEL',
  'SLUICE_METRICS_LISTEN',
] as const;

interface Healthcheck {
  test?: string | string[];
  disable?: boolean;
}

interface Service {
  image?: string;
  build?: unknown;
  command?: string | string[];
  environment?: Record<string, unknown> | string[];
  healthcheck?: Healthcheck;
  restart?: string;
  depends_on?: string[] | Record<string, { condition?: string }>;
  volumes?: Array<string | { type?: string; source?: string }>;
  secrets?: Array<string | { source: string }>;
}

interface Compose {
  services: Record<string, Service>;
  volumes?: Record<string, unknown>;
  secrets?: Record<string, { file?: string; environment?: string }>;
}

const compose = parse(readFileSync(path.join(root, 'docker-compose.yml'), 'utf8'), {
  merge: true,
}) as Compose;
const services = Object.entries(compose.services);

function isSluice(service: Service): boolean {
  return service.build !== undefined || (service.image ?? '').includes('SLUICE_IMAGE');
}

function commandOf(service: Service): string {
  return Array.isArray(service.command) ? service.command.join(' ') : (service.command ?? '');
}

function environmentOf(service: Service): Map<string, string> {
  const env = new Map<string, string>();
  if (Array.isArray(service.environment)) {
    for (const entry of service.environment) {
      const [name, ...value] = entry.split('=');
      env.set(name!, value.join('='));
    }
  } else {
    for (const [name, value] of Object.entries(service.environment ?? {})) env.set(name, String(value ?? ''));
  }
  return env;
}

function volumeSource(volume: string | { source?: string }): string {
  return typeof volume === 'string' ? (volume.split(':')[0] ?? '') : (volume.source ?? '');
}

function isOneShot(service: Service): boolean {
  return service.restart === 'no';
}

function dependencies(service: Service): Map<string, string> {
  const deps = new Map<string, string>();
  if (Array.isArray(service.depends_on)) {
    for (const name of service.depends_on) deps.set(name, 'service_started');
  } else {
    for (const [name, dep] of Object.entries(service.depends_on ?? {})) {
      deps.set(name, dep.condition ?? 'service_started');
    }
  }
  return deps;
}

function sourceFiles(dir: string): string[] {
  const files: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name === 'node_modules') continue;
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) files.push(...sourceFiles(full));
    else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts')) files.push(full);
  }
  return files;
}

describe('docker-compose.yml', () => {
  const sluiceServices = services.filter(([, service]) => isSluice(service));

  it('runs the control plane, setup and at least one worker from the Sluice image', () => {
    const commands = sluiceServices.map(([, service]) => commandOf(service));
    expect(commands).toContain('sluice control-plane');
    expect(commands.filter((command) => command === 'sluice worker').length).toBeGreaterThanOrEqual(1);
    expect(commands.some((command) => command.includes('deploy/setup.sh'))).toBe(true);
  });

  it('gives each Sluice service only the settings of its role', () => {
    const misplaced: string[] = [];
    for (const [name, service] of sluiceServices) {
      const command = commandOf(service);
      const allowed: readonly string[] = command.endsWith('control-plane')
        ? CONTROL_PLANE_ENV
        : command.endsWith('worker')
          ? WORKER_ENV
          : [...CONTROL_PLANE_ENV, ...WORKER_ENV];
      for (const variable of environmentOf(service).keys()) {
        if (!allowed.includes(variable)) misplaced.push(`${name}: ${variable}`);
      }
    }
    expect(misplaced).toEqual([]);
  });

  /**
   * Read as a string literal or `env.NAME`; a `NAME_FILE` also counts when the code reads NAME through the
   * control plane's `fromEnvOrFile(env, 'NAME')`, which builds the `_FILE` name itself.
   */
  function readsVariable(source: string, name: string): boolean {
    if (new RegExp(`(['"\`])${name}\\1|\\benv\\.${name}\\b`).test(source)) return true;
    const base = name.endsWith('_FILE') ? name.slice(0, -'_FILE'.length) : undefined;
    return base !== undefined && new RegExp(`fromEnvOrFile\\(\\s*\\w+,\\s*'${base}'\\s*\\)`).test(source);
  }

  it('gives Sluice services only environment variables that the code under packages/ reads', () => {
    const given = new Set(sluiceServices.flatMap(([, service]) => [...environmentOf(service).keys()]));
    const source = sourceFiles(path.join(root, 'packages'))
      .map((file) => readFileSync(file, 'utf8'))
      .join('\n');
    const unread = [...given].filter((name) => !readsVariable(source, name)).sort();
    expect(
      unread,
      `not read anywhere in packages/ (as a string literal or env.NAME): ${unread.join(', ')}`,
    ).toEqual([]);
  });

  it('takes no secret from an inline environment value', () => {
    const inline: string[] = [];
    for (const [name, service] of services) {
      for (const [variable, value] of environmentOf(service)) {
        // A key, secret, password or token setting may only name a file (SLUICE_TLS_KEY=/path).
        if (/(KEY|SECRET|PASSWORD|TOKEN)$/.test(variable) && !value.startsWith('/')) {
          inline.push(`${name}: ${variable}`);
        }
        if (/^[a-z][a-z0-9+.-]*:\/\/[^/@\s]*:[^/@\s]*@/i.test(value))
          inline.push(`${name}: ${variable} has a password`);
        if (variable.endsWith('_FILE') && !value.startsWith('/'))
          inline.push(`${name}: ${variable} is not a path`);
      }
    }
    expect(inline).toEqual([]);
    for (const [name, secret] of Object.entries(compose.secrets ?? {})) {
      expect(secret.file, `secret ${name} comes from a file`).toBeTypeOf('string');
    }
  });

  it('gives every service a health check', () => {
    const missing = services
      .filter(([, service]) => {
        const check = service.healthcheck;
        return (
          !check || check.disable === true || check.test === undefined || [check.test].flat()[0] === 'NONE'
        );
      })
      .map(([name]) => name);
    expect(missing).toEqual([]);
  });

  it('waits for one-shot services to complete successfully and for the others to be healthy', () => {
    const wrong: string[] = [];
    for (const [name, service] of services) {
      for (const [dependency, condition] of dependencies(service)) {
        const target = compose.services[dependency];
        if (!target) {
          wrong.push(`${name} depends on unknown ${dependency}`);
          continue;
        }
        const expected = isOneShot(target) ? 'service_completed_successfully' : 'service_healthy';
        if (condition !== expected) wrong.push(`${name} → ${dependency}: ${condition}, expected ${expected}`);
      }
    }
    expect(wrong).toEqual([]);
    const waitedFor = new Set(
      services.flatMap(([, service]) =>
        [...dependencies(service)]
          .filter(([, condition]) => condition === 'service_completed_successfully')
          .map(([dependency]) => dependency),
      ),
    );
    for (const [name, service] of services) {
      if (isOneShot(service)) expect(waitedFor.has(name), `one-shot ${name} is waited for`).toBe(true);
    }
  });

  it('keeps data in named volumes and declares every one', () => {
    const declared = new Set(Object.keys(compose.volumes ?? {}));
    const undeclared: string[] = [];
    for (const [name, service] of services) {
      for (const volume of service.volumes ?? []) {
        const source = typeof volume === 'string' ? volume.split(':')[0]! : (volume.source ?? '');
        if (source.startsWith('.') || source.startsWith('/')) continue;
        if (!declared.has(source)) undeclared.push(`${name}: ${source}`);
      }
    }
    expect(undeclared).toEqual([]);
    expect(declared.size).toBeGreaterThan(0);
  });

  it('gives each worker its own bootstrap token volume, mounted in no other worker', () => {
    // What backs a path inside a service: the mount whose target is the longest prefix of it.
    const backing = (service: Service, file: string): string | undefined => {
      let best: { target: string; source: string } | undefined;
      for (const volume of service.volumes ?? []) {
        const [source = '', target = ''] =
          typeof volume === 'string'
            ? volume.split(':')
            : [volume.source ?? '', (volume as { target?: string }).target ?? ''];
        const inside = file === target || file.startsWith(`${target.replace(/\/$/, '')}/`);
        if (inside && (best === undefined || target.length > best.target.length)) best = { target, source };
      }
      return best?.source;
    };
    const workers = sluiceServices.filter(([, service]) => commandOf(service) === 'sluice worker');
    expect(workers.length).toBeGreaterThanOrEqual(2);
    const owners = new Map<string, string[]>();
    for (const [name, service] of workers) {
      const file = environmentOf(service).get('SLUICE_BOOTSTRAP_TOKEN_FILE') ?? '';
      const source = backing(service, file);
      // A token in the image or a tmpfs is not something setup can write: it must be a named volume.
      expect(source, `${name}: ${file} lies in a named volume`).toMatch(/^[a-z0-9][a-z0-9_.-]*$/);
      owners.set(source!, [...(owners.get(source!) ?? []), name]);
    }
    // Not shared by two workers' token paths…
    expect([...owners.values()].filter((names) => names.length > 1)).toEqual([]);
    // …nor mounted at all in another worker, where it could be read through some other path.
    for (const [source, [owner]] of owners) {
      const elsewhere = workers
        .filter(
          ([name, service]) =>
            name !== owner && (service.volumes ?? []).some((v) => volumeSource(v) === source),
        )
        .map(([name]) => name);
      expect(elsewhere, `${source} is mounted only in ${owner}`).toEqual([]);
    }
  });

  it("lets setup write each worker's token into that worker's volume, under the name setup.sh uses", () => {
    const setup = sluiceServices.find(([, service]) => commandOf(service).includes('deploy/setup.sh'))?.[1];
    const names = (Array.isArray(setup?.command) ? setup.command : []).slice(2);
    const script = readFileSync(path.join(root, 'deploy/setup.sh'), 'utf8');
    expect(script).toContain('STATE=/var/lib/sluice/bootstrap');
    expect(script).toContain('"$tokens/token"');
    for (const name of names) {
      const worker = compose.services[name];
      const own = (worker?.volumes ?? []).map(volumeSource).find((source) => source.endsWith('-bootstrap'));
      expect(own, `${name} has a token volume`).toBeDefined();
      expect((setup?.volumes ?? []).map(String)).toContain(`${own}:/var/lib/sluice/bootstrap/${name}`);
      expect(environmentOf(worker!).get('SLUICE_BOOTSTRAP_TOKEN_FILE')).toBe(
        '/var/lib/sluice/bootstrap/token',
      );
    }
  });

  it('runs the PostgreSQL source with logical replication and TLS', () => {
    const source = compose.services['source-db'];
    const command = commandOf(source ?? {});
    expect(command).toContain('wal_level=logical');
    expect(command).toContain('ssl=on');
  });

  it('runs a real StarRocks all-in-one', () => {
    expect(services.some(([, service]) => (service.image ?? '').includes('starrocks/allin1-ubuntu'))).toBe(
      true,
    );
  });

  const compose_ = dockerComposeTool();
  announceSkip('docker compose config', compose_);
  it.skipIf(!compose_.available)('docker compose config accepts the file', () => {
    // Placeholder files stand in for the generated secrets, so the check needs nothing generated.
    const secrets = mkdtempSync(path.join(tmpdir(), 'sluice-compose-'));
    try {
      for (const name of Object.keys(compose.secrets ?? {}))
        writeFileSync(path.join(secrets, name), 'placeholder\n');
      const result = spawnSync('docker', ['compose', '-f', 'docker-compose.yml', 'config', '--quiet'], {
        cwd: root,
        encoding: 'utf8',
        timeout: 60_000,
        env: { ...process.env, SLUICE_SECRETS_DIR: secrets },
      });
      expect(result.error).toBeUndefined();
      expect({ status: result.status, stderr: result.stderr }).toEqual({ status: 0, stderr: '' });
    } finally {
      rmSync(secrets, { recursive: true, force: true });
    }
  });
});

describe('.env.example', () => {
  const text = readFileSync(path.join(root, '.env.example'), 'utf8');
  const settings = text
    .split('\n')
    .filter((line) => /^\s*[A-Z_][A-Z0-9_]*=/.test(line))
    .map((line) => line.trim().split('=')[0]!);

  it('holds no secret and says how to generate them', () => {
    const lines = text.split('\n').filter((line) => /^\s*[A-Z_][A-Z0-9_]*=/.test(line));
    expect(settings.filter((name) => /(KEY|SECRET|PASSWORD|TOKEN)(_FILE)?$/.test(name))).toEqual([]);
    expect(lines.filter((line) => /[0-9a-f]{32,}/i.test(line))).toEqual([]);
    expect(text).toContain('openssl rand -hex 32');
  });

  it('names every variable docker-compose.yml interpolates', () => {
    const used = new Set(
      [
        ...readFileSync(path.join(root, 'docker-compose.yml'), 'utf8').matchAll(/\$\{([A-Z_][A-Z0-9_]*)/g),
      ].map((match) => match[1]!),
    );
    expect([...used].filter((name) => !settings.includes(name)).sort()).toEqual([]);
  });
});

describe('deploy/', () => {
  it('keeps generated secrets out of git', () => {
    const ignore = readFileSync(path.join(root, 'deploy/secrets/.gitignore'), 'utf8');
    expect(ignore.split('\n')).toContain('*');
  });

  it('ships executable setup scripts', () => {
    for (const script of ['gen-certs.sh', 'generate-secrets.sh', 'setup.sh', 'starrocks-init.sh', 'sluice']) {
      const mode = statSync(path.join(root, 'deploy', script)).mode;
      expect(mode & 0o111, `deploy/${script} is executable`).not.toBe(0);
    }
  });
});
