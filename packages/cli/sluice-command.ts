// The `sluice` command tree and its runner: resolve the command, parse its flags, print help, run it, and
// turn whatever it throws into one scrubbed line on stderr and an exit code.
import { describeFailure, EXIT } from './cli-error.ts';
import {
  type CommandSpec,
  commandName,
  helpText,
  parseCommandLine,
  resolveCommand,
} from './command-table.ts';
import { adminCommand } from './commands/admin.ts';
import { auditCommand } from './commands/audit.ts';
import { controlPlaneCommand } from './commands/control-plane.ts';
import { datasourceCommand } from './commands/datasource.ts';
import { devCommand } from './commands/dev.ts';
import { jobCommand } from './commands/job.ts';
import { keysCommand } from './commands/keys.ts';
import { loginCommand } from './commands/login.ts';
import { tokenCommand } from './commands/token.ts';
import { workerCommand } from './commands/worker.ts';
import { visible } from './output.ts';

export const sluiceCommand: CommandSpec = {
  name: 'sluice',
  summary: 'Sluice: PostgreSQL → StarRocks change data capture with sealed credentials',
  description:
    'Start with `sluice dev` (what `npm start` runs): a control plane, a worker, a demo PostgreSQL and a sink\n' +
    'on this machine. Against a control plane elsewhere: `sluice login --control-plane URL --ca-file FILE`.\n' +
    'Passwords are read from files (--password-file) or prompted for, never taken as arguments.',
  subcommands: [
    devCommand,
    controlPlaneCommand,
    workerCommand,
    adminCommand,
    loginCommand,
    keysCommand,
    tokenCommand,
    datasourceCommand,
    jobCommand,
    auditCommand,
  ],
};

export interface CliIo {
  env?: NodeJS.ProcessEnv;
  stdout?: NodeJS.WriteStream;
  stderr?: NodeJS.WriteStream;
}

export async function runCli(argv: string[], io: CliIo = {}): Promise<number> {
  const env = io.env ?? process.env;
  const stdout = io.stdout ?? process.stdout;
  const stderr = io.stderr ?? process.stderr;
  const resolved = resolveCommand(sluiceCommand, argv);
  const release = env.SLUICE_STOP_WITH_PARENT === '1' ? stopWithParent() : () => undefined;
  try {
    const parsed = parseCommandLine(resolved, env);
    if (parsed.help) {
      stdout.write(helpText(resolved.path));
      return EXIT.ok;
    }
    const code = await resolved.command.run!({
      flags: parsed.flags,
      args: parsed.args,
      json: parsed.json,
      path: commandName(resolved.path),
      env,
      stdout,
      stderr,
    });
    return code ?? EXIT.ok;
  } catch (error) {
    const { exitCode, message } = describeFailure(error);
    stderr.write(`sluice: ${visible(message, { multiline: true })}\n`);
    return exitCode;
  } finally {
    release();
  }
}

/**
 * Set by `sluice dev` for its children: stdin is a pipe from the parent that closes when the parent ends,
 * even by SIGKILL; the child then stops gracefully, as on SIGTERM, instead of living on as an orphan.
 */
function stopWithParent(): () => void {
  const onClose = () => process.kill(process.pid, 'SIGTERM');
  process.stdin.on('data', () => undefined);
  process.stdin.once('close', onClose);
  process.stdin.on('error', () => undefined);
  // Once the command is done, stdin must not keep the process alive, nor signal it.
  return () => {
    process.stdin.removeListener('close', onClose);
    process.stdin.destroy();
  };
}
