// A Sluice process that `sluice dev` runs as a child (`sluice control-plane`, `sluice worker`): its own
// process group, so a terminal's Ctrl-C reaches only `sluice dev`, which then stops the children in order
// (worker first, so it hands its lease back while the control plane still answers). Output goes to a log
// file (0600); waiting for a line scans it as it arrives.
import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';

export interface ChildService {
  readonly name: string;
  readonly child: ChildProcess;
  readonly exited: Promise<number | string>;
  /** The first line matching `pattern`; rejects when the process exits first. */
  waitForLine(pattern: RegExp): Promise<string>;
  /** Sends `signal`, waits for the exit, SIGKILLs the group after `graceMs`. */
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<number | string>;
  /** SIGKILL to the whole group, at once. */
  kill(): void;
}

const live = new Set<ChildProcess>();
let hooked = false;

export function startChildService(options: {
  name: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  logFile: string;
}): ChildService {
  if (!hooked) {
    hooked = true;
    // Last resort: children never outlive `sluice dev`, however it ends.
    process.on('exit', () => {
      for (const child of live) killGroup(child);
    });
  }
  const log = createWriteStream(options.logFile, { flags: 'a', mode: 0o600 });
  const child = spawn(process.execPath, options.args, {
    env: { ...options.env, SLUICE_STOP_WITH_PARENT: '1' },
    detached: true,
    // stdin is a pipe the parent never writes: it closes when `sluice dev` ends, however it ends, and the
    // child then stops itself (see SLUICE_STOP_WITH_PARENT in the control-plane and worker commands).
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  live.add(child);
  const recent: string[] = [];
  const waiters = new Set<{ pattern: RegExp; resolve: (line: string) => void }>();
  let pending = '';
  const onData = (chunk: Buffer) => {
    log.write(chunk);
    pending += chunk.toString();
    let newline = pending.indexOf('\n');
    while (newline >= 0) {
      const line = pending.slice(0, newline);
      pending = pending.slice(newline + 1);
      recent.push(line);
      if (recent.length > 20) recent.shift();
      for (const waiter of waiters) {
        if (waiter.pattern.test(line)) {
          waiters.delete(waiter);
          waiter.resolve(line);
        }
      }
      newline = pending.indexOf('\n');
    }
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  const exited = new Promise<number | string>((resolve) => {
    child.once('exit', (code, signal) => {
      live.delete(child);
      log.end();
      resolve(code ?? signal ?? 'unknown');
    });
  });
  return {
    name: options.name,
    child,
    exited,
    waitForLine(pattern) {
      return new Promise((resolve, reject) => {
        waiters.add({ pattern, resolve });
        void exited.then((code) =>
          reject(
            new Error(
              `${options.name} exited (${code}); last output (full log in ${options.logFile}):\n${recent.join('\n')}`,
            ),
          ),
        );
      });
    },
    async stop(signal = 'SIGTERM', graceMs = 30_000) {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill(signal);
        const timer = setTimeout(() => killGroup(child), graceMs);
        const code = await exited;
        clearTimeout(timer);
        return code;
      }
      return exited;
    },
    kill: () => killGroup(child),
  };
}

function killGroup(child: ChildProcess): void {
  try {
    if (child.pid) process.kill(-child.pid, 'SIGKILL');
  } catch {
    // already gone
  }
}
