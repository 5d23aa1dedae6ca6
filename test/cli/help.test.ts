// Every command and subcommand of the table has help: generated from the table itself, so a command added
// without a summary, or whose help lacks a flag, fails here.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { allCommands, type CommandSpec, EXIT_CODE_HELP, runCli, sluiceCommand } from '@sluice/cli';
import { describe, expect, it } from 'vitest';

const BIN = path.resolve(import.meta.dirname, '../../packages/cli/bin/sluice.js');

async function helpOf(words: string[]): Promise<{ code: number; out: string }> {
  let out = '';
  const sink = {
    write: (text: string) => {
      out += text;
      return true;
    },
    isTTY: false,
  } as unknown as NodeJS.WriteStream;
  const code = await runCli([...words, '--help'], { stdout: sink, stderr: sink, env: {} });
  return { code, out };
}

const paths = allCommands(sluiceCommand);

describe('sluice help', () => {
  it.each(paths.map((p) => [p.map((c) => c.name).join(' '), p] as [string, CommandSpec[]]))(
    '%s --help explains the command, its arguments, flags and subcommands',
    async (name, commandPath) => {
      const command = commandPath[commandPath.length - 1]!;
      expect(command.summary.trim().length, `${name} has no summary`).toBeGreaterThan(10);
      expect(
        command.run !== undefined || (command.subcommands?.length ?? 0) > 0,
        `${name} does nothing`,
      ).toBe(true);
      const { code, out } = await helpOf(commandPath.slice(1).map((c) => c.name));
      expect(code).toBe(0);
      expect(out).toContain(`Usage: ${name}`);
      expect(out).toContain(command.summary);
      for (const [flag, spec] of Object.entries(command.flags ?? {})) {
        expect(spec.description.trim(), `${name} --${flag} has no description`).not.toBe('');
        expect(out).toContain(`--${flag}`);
      }
      for (const arg of command.args ?? []) expect(out).toContain(arg.name);
      for (const sub of command.subcommands ?? []) {
        expect(out).toContain(sub.name);
        expect(out).toContain(sub.summary);
      }
      for (const flag of ['--control-plane', '--ca-file', '--json', '--help']) expect(out).toContain(flag);
    },
  );

  it('covers every command the issue asks for', () => {
    const names = new Set(
      paths.map((p) =>
        p
          .slice(1)
          .map((c) => c.name)
          .join(' '),
      ),
    );
    for (const name of [
      'control-plane',
      'worker',
      'dev',
      'admin create',
      'login',
      'keys generate',
      'keys rotate',
      'token create',
      'datasource add postgres',
      'datasource add starrocks',
      'datasource list',
      'datasource show',
      'datasource test',
      'datasource rm',
      'job create',
      'job list',
      'job status',
      'job pause',
      'job resume',
      'job stop',
      'job rm',
      'worker list',
      'worker drain',
      'worker revoke',
      'audit list',
      'audit verify',
    ])
      expect(names, name).toContain(name);
  });

  it('sluice --help through the bin shim documents every exit code, and a bad command exits 2', async () => {
    const run = promisify(execFile);
    const { stdout } = await run(process.execPath, [BIN, '--help']);
    for (const [code, meaning] of EXIT_CODE_HELP) expect(stdout).toContain(`${code}  ${meaning}`);
    const failure = await run(process.execPath, [BIN, 'no-such-command']).catch(
      (error: { code: number; stderr: string }) => error,
    );
    expect((failure as { code: number }).code).toBe(2);
    expect((failure as { stderr: string }).stderr).toContain('unknown command "no-such-command"');
  });
});
