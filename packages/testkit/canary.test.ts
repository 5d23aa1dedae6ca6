import { execFile } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  canaryForms,
  checkRunDirectory,
  createRunDirectory,
  plantCanary,
  RUN_DIRECTORY_ENV,
  scanRunDirectory,
} from './canary.ts';
import { startServiceProcess } from './service-process.ts';

const HERE = import.meta.dirname;
const VITEST = path.resolve(HERE, '../../node_modules/vitest/vitest.mjs');

async function writeLog(dir: string, name: string, lines: string[]): Promise<string> {
  const file = path.join(dir, 'logs', name);
  await writeFile(file, `${lines.join('\n')}\n`);
  return file;
}

describe('run-wide canary scan', () => {
  it('fails on a planted canary in a log file, naming its label, the file and the line, never the value', async () => {
    const dir = createRunDirectory();
    const value = 'fixture-canary-9c41d2e7aa';
    plantCanary(value, 'fixture source password', dir);
    plantCanary('fixture-absent-canary-55e0', 'absent one', dir);
    await writeLog(dir, 'clean.log', ['{"msg":"started"}', '{"msg":"ready"}']);
    const file = await writeLog(dir, 'leaky.log', [
      '{"msg":"started"}',
      '{"msg":"ok"}',
      `{"password":"${value}"}`,
    ]);

    const scan = scanRunDirectory(dir);
    expect(scan.canaries).toBe(2);
    expect(scan.logFiles).toBe(2);
    expect(scan.hits).toEqual([{ label: 'fixture source password', form: 'plain', file, line: 3 }]);
    let message = '';
    try {
      checkRunDirectory(dir);
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toContain(`fixture source password (plain) in ${file}:3`);
    expect(message).not.toContain(value);
  });

  it('passes with a one-line summary when no planted canary is in any log', async () => {
    const dir = createRunDirectory();
    plantCanary('fixture-absent-canary-0b7d', 'absent', dir);
    plantCanary('fixture-absent-canary-0b7d', 'planted twice', dir);
    await writeLog(dir, 'a.log', ['fixture-absent-canary-0b7', 'nothing here']);
    await writeLog(dir, 'b.log', ['still nothing']);
    expect(checkRunDirectory(dir)).toBe('canary scan: 1 canaries, 2 log files, no hit');
  });

  it('finds the canary base64-encoded at any byte offset, as base64url and as hex', async () => {
    const value = 'fixture-canary-b64?>~-31f0';
    for (const prefix of ['', 'x', 'xy', 'user:']) {
      const dir = createRunDirectory();
      plantCanary(value, 'encoded', dir);
      const raw = Buffer.from(`${prefix}${value}tail`);
      await writeLog(dir, 'enc.log', [
        `b64=${raw.toString('base64')}`,
        `url=${raw.toString('base64url')}`,
        `hex=${raw.toString('hex')}`,
        `HEX=${raw.toString('hex').toUpperCase()}`,
      ]);
      const hits = scanRunDirectory(dir).hits.map((hit) => `${hit.form}@${hit.line}`);
      expect(hits, `prefix ${JSON.stringify(prefix)}`).toEqual(
        expect.arrayContaining(['base64@1', 'base64url@2', 'hex@3', 'hex@4']),
      );
    }
    expect(canaryForms(value).every((form) => form.text.length >= 8)).toBe(true);
  });

  it('has every service process of the run write its lines to a log file in the run directory', async () => {
    const runDir = process.env[RUN_DIRECTORY_ENV];
    expect(runDir, 'the global setup names the run directory').toBeTruthy();
    const entry = path.join(await mkdtemp(path.join(tmpdir(), 'sluice-proc-')), 'entry.ts');
    // stdout and stderr are separate pipes: the unterminated last line comes well after both.
    await writeFile(
      entry,
      "console.log('first');\nconsole.error('second');\nsetTimeout(() => process.stdout.write('no newline'), 300);\n",
    );
    const proc = startServiceProcess({ entry, name: 'log file probe' });
    await proc.exited;
    expect(proc.logFile?.startsWith(path.join(runDir!, 'logs'))).toBe(true);
    await expect.poll(() => readFile(proc.logFile!, 'utf8')).toContain('no newline');
    const text = await readFile(proc.logFile!, 'utf8');
    expect(text.split('\n').slice(0, 2).sort()).toEqual(['first', 'second']);
    expect(text.endsWith('\nno newline')).toBe(true);
  });

  /** Runs a tiny vitest project whose global setup starts a canary run and whose test logs `logged`. */
  async function tinyRun(logged: string): Promise<{ code: number; output: string }> {
    const dir = await mkdtemp(path.join(tmpdir(), 'sluice-canary-project-'));
    const canaryTs = JSON.stringify(path.join(HERE, 'canary.ts'));
    const serviceTs = JSON.stringify(path.join(HERE, 'service-process.ts'));
    await writeFile(
      path.join(dir, 'vitest.config.mjs'),
      "export default { test: { globals: true, include: ['*.test.mjs'], globalSetup: ['./setup.mjs'] } };\n",
    );
    await writeFile(
      path.join(dir, 'setup.mjs'),
      `import { startCanaryRun } from ${canaryTs};\nexport default function setup() { const run = startCanaryRun(); return () => run.finish(); }\n`,
    );
    await writeFile(path.join(dir, 'entry.ts'), `console.log(${JSON.stringify(logged)});\n`);
    await writeFile(
      path.join(dir, 'leak.test.mjs'),
      `import { plantCanary } from ${canaryTs};
import { startServiceProcess } from ${serviceTs};
const CANARY = plantCanary('tiny-project-canary-7e21c9', 'tiny project password');
test('runs a service', async () => {
  const proc = startServiceProcess({ entry: ${JSON.stringify(path.join(dir, 'entry.ts'))}, name: 'tiny' });
  expect(await proc.exited).toBe(0);
  expect(CANARY.length).toBeGreaterThan(8);
});
`,
    );
    const env = Object.fromEntries(
      Object.entries(process.env).filter(([key]) => !key.startsWith('VITEST') && key !== RUN_DIRECTORY_ENV),
    );
    return new Promise((resolve) => {
      execFile(
        process.execPath,
        [VITEST, 'run', '--root', dir, '--config', path.join(dir, 'vitest.config.mjs')],
        { env: { ...env, NO_COLOR: '1' }, timeout: 60_000 },
        (error, stdout, stderr) => {
          const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
          resolve({ code, output: `${stdout}\n${stderr}` });
        },
      );
    });
  }

  it('makes `vitest run` exit non-zero from the global setup teardown when a service logs a canary', async () => {
    const leaked = await tinyRun('connecting with password tiny-project-canary-7e21c9');
    expect(leaked.output).toMatch(/1 passed/);
    expect(leaked.output).toMatch(/tiny project password \(plain\) in \S+tiny-\d+-1\.log:1/);
    expect(leaked.output).not.toContain('password tiny-project-canary-7e21c9');
    expect(leaked.code).not.toBe(0);

    const clean = await tinyRun('connecting with password <redacted>');
    expect(clean.output).toContain('canary scan: 1 canaries, 1 log files, no hit');
    expect(clean.code).toBe(0);
  });
});
