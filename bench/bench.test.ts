// The bench runs: `--quick` as a child process, and the JSON it writes has the promised shape. Timings are
// never asserted — they belong to the machine, not to the code.
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { BenchReport } from './report.ts';

const main = path.join(path.dirname(fileURLToPath(import.meta.url)), 'main.ts');

function runBench(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [main, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 170_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe('npm run bench -- --quick', () => {
  it('runs every scenario and writes a JSON report with machine facts and one row per figure', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'sluice-bench-'));
    try {
      const jsonPath = path.join(dir, 'bench.json');
      const result = await runBench(['--quick', '--json', jsonPath]);
      expect(result.code, result.stderr.slice(-2000)).toBe(0);
      const report = JSON.parse(await readFile(jsonPath, 'utf8')) as BenchReport;

      expect(report.format).toBe(1);
      expect(report.quick).toBe(true);
      expect(Date.parse(report.startedAt)).not.toBeNaN();
      expect(report.machine).toMatchObject({
        cpuModel: expect.any(String),
        cores: expect.any(Number),
        memoryGiB: expect.any(Number),
        nodeVersion: expect.any(String),
        postgresVersion: expect.stringMatching(/^\d+/),
      });
      expect(report.scenarios.map((scenario) => scenario.name)).toEqual([
        'streaming-decode',
        'streaming-end-to-end',
        'snapshot',
        'freshness',
        'control-plane',
      ]);
      for (const scenario of report.scenarios) {
        expect(['ok', 'skipped'], `${scenario.name}: ${scenario.reason}`).toContain(scenario.status);
        if (scenario.status === 'skipped') {
          expect(scenario.reason).toEqual(expect.any(String));
          expect(scenario.rows).toEqual([]);
          continue;
        }
        expect(scenario.rows.length, scenario.name).toBeGreaterThan(0);
        for (const row of scenario.rows) {
          expect(row).toMatchObject({
            case: expect.any(String),
            subject: expect.any(String),
            metric: expect.any(String),
            value: expect.any(Number),
          });
          if (row.ratio !== undefined) expect(row.reference).toEqual(expect.any(Number));
        }
        // Every table line is in the stdout table too.
        expect(result.stdout).toContain(scenario.title);
      }
      // The PostgreSQL scenarios always carry a reference measured in the same run.
      const decode = report.scenarios.find((scenario) => scenario.name === 'streaming-decode')!;
      if (decode.status === 'ok') {
        expect(decode.rows.some((row) => row.subject.includes('(reference)'))).toBe(true);
        expect(decode.rows.every((row) => typeof row.ratio === 'number')).toBe(true);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 180_000);
});
