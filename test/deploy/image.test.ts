import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { announceSkip, dockerEngineTool } from './tools.ts';

const root = path.resolve(import.meta.dirname, '../..');
const dockerfile = readFileSync(path.join(root, 'Dockerfile'), 'utf8');
const instructions = dockerfile
  .replace(/\\\n/g, ' ')
  .split('\n')
  .map((line) => line.trim())
  .filter((line) => line !== '' && !line.startsWith('#'));
const stages = instructions.filter((line) => /^FROM\s/i.test(line));
const runtime = instructions.slice(instructions.lastIndexOf(stages.at(-1)!));

describe('Dockerfile', () => {
  it('builds in several stages from the Node 24 slim image', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    expect(dockerfile).toMatch(/^ARG NODE_IMAGE=node:24-slim$/m);
    for (const stage of stages) expect(stage).toMatch(/^FROM \$\{NODE_IMAGE\}/);
  });

  it('installs production dependencies only, from the lockfile', () => {
    const installs = instructions.filter((line) => /\bnpm (ci|install|i)\b/.test(line));
    expect(installs.length).toBeGreaterThan(0);
    for (const install of installs) expect(install).toMatch(/npm ci --omit=dev\b/);
  });

  it('runs as a non-root user with a health check', () => {
    const user = runtime.filter((line) => /^USER\s/i.test(line)).at(-1);
    expect(user).toBeDefined();
    expect(user).not.toMatch(/^USER\s+(root|0)(:|$)/i);
    expect(runtime.some((line) => /^HEALTHCHECK\s+.*CMD\s/i.test(line))).toBe(true);
  });

  it('defaults to sluice control-plane, through a wrapper that runs the TypeScript entry point', () => {
    expect(runtime.filter((line) => /^CMD\s/i.test(line)).at(-1)).toBe('CMD ["sluice", "control-plane"]');
    const wrapper = readFileSync(path.join(root, 'deploy/sluice'), 'utf8');
    expect(wrapper).toMatch(/^exec node \/app\/packages\/cli\/main\.ts "\$@"$/m);
    expect(wrapper).toMatch(/^ulimit -c 0$/m);
    expect(dockerfile).toMatch(/^COPY deploy\/sluice \/usr\/local\/bin\/sluice$/m);
  });

  it('keeps secrets, local state and tests out of the build context', () => {
    const ignore = readFileSync(path.join(root, '.dockerignore'), 'utf8').split('\n');
    expect(ignore[ignore.findIndex((line) => !line.startsWith('#') && line.trim() !== '')]).toBe('*');
    for (const pattern of ['**/.env', '**/*.key', '**/*.pem', '**/*.test.ts', '**/node_modules']) {
      expect(ignore).toContain(pattern);
    }
    expect(ignore.some((line) => line.startsWith('!deploy/secrets'))).toBe(false);
  });

  const engine = dockerEngineTool();
  announceSkip('docker build', engine);
  it.skipIf(!engine.available)(
    'the image builds, runs as sluice with Node 24, and carries no dev dependency',
    {
      timeout: 20 * 60_000,
    },
    () => {
      const tag = 'sluice:deploy-test';
      const run = (args: string[]) =>
        spawnSync('docker', args, { cwd: root, encoding: 'utf8', timeout: 20 * 60_000 });
      const build = run(['build', '--tag', tag, '.']);
      expect(build.status, build.stderr).toBe(0);
      const inspect = run([
        'image',
        'inspect',
        tag,
        '--format',
        '{{.Config.User}} {{json .Config.Healthcheck.Test}}',
      ]);
      expect(inspect.stdout.trim()).toBe('10001:10001 ["CMD","node","/app/deploy/healthcheck.mjs"]');
      const probe = run([
        'run',
        '--rm',
        '--entrypoint',
        'sh',
        tag,
        '-c',
        'node --version && id -u && test -x /usr/local/bin/sluice && test ! -e /app/node_modules/vitest && echo ok',
      ]);
      expect(probe.status, probe.stderr).toBe(0);
      expect(probe.stdout).toMatch(/^v24\.[\s\S]*\n10001\nok\n$/);
    },
  );
});
