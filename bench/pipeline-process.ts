// Runs bench/pipeline-worker.ts as a child process and follows its JSON lines.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { PipelineWorkerConfig, PipelineWorkerResult } from './pipeline-worker.ts';

const ENTRY = path.join(path.dirname(fileURLToPath(import.meta.url)), 'pipeline-worker.ts');

export interface PipelineProcess {
  pid: number;
  /** Resolves once the pipeline streams. */
  streaming: Promise<void>;
  /** Resolves with the worker's own measurements when it stops. */
  done: Promise<PipelineWorkerResult>;
  /** Asks it to stop (when it runs without `untilLsn`). */
  stop(): void;
  /** Ends it at once (cleanup). */
  kill(): void;
}

export function startPipelineProcess(config: PipelineWorkerConfig, timeoutMs: number): PipelineProcess {
  const child = spawn(process.execPath, [ENTRY, JSON.stringify(config)], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { PATH: process.env.PATH, HOME: process.env.HOME },
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000);
  });
  let onStreaming: () => void = () => undefined;
  const streaming = new Promise<void>((resolve) => {
    onStreaming = resolve;
  });
  const done = new Promise<PipelineWorkerResult>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the pipeline did not finish within ${timeoutMs / 1000} s`));
    }, timeoutMs);
    let pending = '';
    let result: PipelineWorkerResult | undefined;
    let failed: string | undefined;
    child.stdout.on('data', (chunk: Buffer) => {
      pending += chunk.toString();
      let newline = pending.indexOf('\n');
      while (newline >= 0) {
        const line = pending.slice(0, newline);
        pending = pending.slice(newline + 1);
        newline = pending.indexOf('\n');
        const event = JSON.parse(line) as { event: string; message?: string } & PipelineWorkerResult;
        if (event.event === 'streaming') onStreaming();
        else if (event.event === 'done') result = event;
        else if (event.event === 'failed') failed = event.message;
      }
    });
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      if (result) resolve(result);
      else
        reject(
          new Error(
            `the pipeline ${failed ? `failed: ${failed}` : `exited ${code}`}${stderr ? `: ${stderr.trim().split('\n').slice(-3).join(' | ')}` : ''}`,
          ),
        );
    });
  });
  done.catch(() => undefined);
  return {
    pid: child.pid!,
    streaming: Promise.race([streaming, done.then(() => undefined)]),
    done,
    stop: () => child.stdin.write('stop\n'),
    kill: () => {
      if (child.exitCode === null) child.kill('SIGKILL');
    },
  };
}
