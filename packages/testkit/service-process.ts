// Runs a Sluice service (control plane, worker) as a real child process for end-to-end tests: Node with
// type stripping on a `.ts` entry, its own environment, every log line captured for assertions (canary
// scans) and for the failure message, and no process left behind when the test ends. Inside a test run the
// lines also go to a log file in the run directory, which the global setup's teardown scans for every
// planted canary (see canary.ts).
import { type ChildProcess, spawn } from 'node:child_process';
import { appendFileSync } from 'node:fs';
import { serviceLogFile } from './canary.ts';

export interface ServiceProcessOptions {
  /** Path of the `.ts` entry point. */
  entry: string;
  args?: string[];
  /** The whole environment of the child (nothing is inherited except PATH and HOME). */
  env?: Record<string, string | undefined>;
  /** Name used in error messages. */
  name?: string;
  cwd?: string;
}

export interface ServiceProcess {
  readonly name: string;
  readonly pid: number | undefined;
  /** Every line the process wrote to stdout and stderr so far. */
  readonly lines: readonly string[];
  /** All output as one string, for canary scans. */
  output(): string;
  /** The file in the run directory that also receives every line (undefined outside a test run). */
  readonly logFile: string | undefined;
  /** Resolves with the first line matching `pattern` (including lines already written). */
  waitForLine(pattern: RegExp, timeoutMs?: number): Promise<string>;
  /** Resolves when the process has exited, with its exit code (or the signal's name). */
  readonly exited: Promise<number | string>;
  /** Sends a signal and waits for the exit (SIGKILL after `graceMs`). */
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<number | string>;
}

const live = new Set<ChildProcess>();
let hooked = false;

export function startServiceProcess(options: ServiceProcessOptions): ServiceProcess {
  const name = options.name ?? options.entry;
  if (!hooked) {
    hooked = true;
    process.on('exit', () => {
      for (const child of live) child.kill('SIGKILL');
    });
  }
  const child = spawn(process.execPath, [options.entry, ...(options.args ?? [])], {
    cwd: options.cwd,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  live.add(child);
  const lines: string[] = [];
  const logFile = serviceLogFile(name);
  if (logFile !== undefined) appendFileSync(logFile, '');
  const waiters = new Set<{ pattern: RegExp; resolve: (line: string) => void }>();
  const onData = (() => {
    let pending = '';
    return (chunk: Buffer) => {
      // The file gets every byte as it comes, a last line without a newline included.
      if (logFile !== undefined) appendFileSync(logFile, chunk);
      pending += chunk.toString();
      let newline = pending.indexOf('\n');
      while (newline >= 0) {
        const line = pending.slice(0, newline);
        pending = pending.slice(newline + 1);
        lines.push(line);
        for (const waiter of waiters) {
          if (waiter.pattern.test(line)) {
            waiters.delete(waiter);
            waiter.resolve(line);
          }
        }
        newline = pending.indexOf('\n');
      }
    };
  })();
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  const exited = new Promise<number | string>((resolve) => {
    child.once('exit', (code, signal) => {
      live.delete(child);
      resolve(code ?? signal ?? 'unknown');
    });
  });

  const tail = () => lines.slice(-30).join('\n');
  return {
    name,
    pid: child.pid,
    lines,
    logFile,
    output: () => lines.join('\n'),
    exited,
    waitForLine(pattern, timeoutMs = 60_000) {
      const seen = lines.find((line) => pattern.test(line));
      if (seen !== undefined) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const waiter = { pattern, resolve };
        const timer = setTimeout(() => {
          waiters.delete(waiter);
          reject(
            new Error(`${name}: no line matching ${pattern} within ${timeoutMs} ms; last output:\n${tail()}`),
          );
        }, timeoutMs);
        waiter.resolve = (line) => {
          clearTimeout(timer);
          resolve(line);
        };
        waiters.add(waiter);
        void exited.then((code) => {
          if (!waiters.has(waiter)) return;
          waiters.delete(waiter);
          clearTimeout(timer);
          reject(
            new Error(`${name} exited (${code}) before a line matching ${pattern}; last output:\n${tail()}`),
          );
        });
      });
    },
    async stop(signal = 'SIGTERM', graceMs = 20_000) {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill(signal);
        const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
        const code = await exited;
        clearTimeout(timer);
        return code;
      }
      return exited;
    },
  };
}
