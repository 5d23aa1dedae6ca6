import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { startServiceProcess } from './service-process.ts';

async function script(body: string): Promise<string> {
  const file = path.join(await mkdtemp(path.join(tmpdir(), 'sluice-proc-')), 'entry.ts');
  await writeFile(file, body);
  return file;
}

describe('service processes', () => {
  it('runs a TypeScript entry, captures its lines and waits for one', async () => {
    const entry = await script(
      "const n: number = 2;\nconsole.log('ready ' + n + ' ' + process.env.GREETING);\nsetTimeout(() => console.error('later'), 50);\nsetTimeout(() => {}, 60_000);\n",
    );
    const proc = startServiceProcess({ entry, env: { GREETING: 'hi' } });
    expect(await proc.waitForLine(/^ready/)).toBe('ready 2 hi');
    await proc.waitForLine(/later/);
    expect(await proc.stop('SIGTERM')).toBe('SIGTERM');
    expect(proc.output()).toContain('later');
  });

  it('does not pass the parent environment through', async () => {
    process.env.SLUICE_CANARY_PARENT = 'canary-parent-value';
    const entry = await script("console.log('env=' + (process.env.SLUICE_CANARY_PARENT ?? 'absent'));\n");
    const proc = startServiceProcess({ entry });
    expect(await proc.waitForLine(/^env=/)).toBe('env=absent');
    delete process.env.SLUICE_CANARY_PARENT;
  });

  it('rejects a wait when the process exits first, showing its last output', async () => {
    const entry = await script("console.log('about to fail');\nprocess.exit(3);\n");
    const proc = startServiceProcess({ entry, name: 'failing' });
    await expect(proc.waitForLine(/never/)).rejects.toThrow(/failing exited \(3\)[\s\S]*about to fail/);
    expect(await proc.exited).toBe(3);
  });
});
