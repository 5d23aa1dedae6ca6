// Which external tools this machine has, for tests that need them and skip (saying why) where they're absent.
import { spawnSync } from 'node:child_process';

export interface Tool {
  available: boolean;
  reason: string;
}

function runs(command: string, args: readonly string[]): { ok: boolean; output: string } {
  const result = spawnSync(command, args, { encoding: 'utf8', timeout: 30_000 });
  if (result.error) return { ok: false, output: result.error.message };
  return { ok: result.status === 0, output: `${result.stdout}${result.stderr}`.trim() };
}

export function terraformTool(): Tool {
  const probe = runs('terraform', ['version']);
  return probe.ok
    ? { available: true, reason: '' }
    : { available: false, reason: `the terraform binary is not available (${probe.output.split('\n')[0]})` };
}

export function dockerComposeTool(): Tool {
  const probe = runs('docker', ['compose', 'version']);
  return probe.ok
    ? { available: true, reason: '' }
    : { available: false, reason: `docker compose is not available (${probe.output.split('\n')[0]})` };
}

export function dockerEngineTool(): Tool {
  const probe = runs('docker', ['info', '--format', '{{.ServerVersion}}']);
  if (probe.ok) return { available: true, reason: '' };
  const line = probe.output.split('\n').find((text) => /cannot connect|not found|ENOENT|error/i.test(text));
  return { available: false, reason: `no Docker engine (${line ?? probe.output.split('\n')[0]})` };
}

/** Prints why a test is skipped, once, where a person running the suite will see it. */
export function announceSkip(what: string, tool: Tool): void {
  if (!tool.available) console.log(`skipping ${what}: ${tool.reason}`);
}
