// The machine facts a result is meaningless without: CPU, cores, memory, load, Node and PostgreSQL versions.
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';

export interface Machine {
  cpuModel: string;
  cores: number;
  memoryGiB: number;
  kernel: string;
  nodeVersion: string;
  /** The server the PostgreSQL scenarios ran against, e.g. `15.18`. */
  postgresVersion: string;
  /** The binaries it came from. */
  postgresBinDir: string;
  /** 1, 5 and 15 minute load averages when the run started (other work on the machine skews figures). */
  loadAverage: number[];
}

export function describeMachine(postgresBinDir: string): Machine {
  const cpus = os.cpus();
  return {
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    cores: os.availableParallelism(),
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    kernel: `${os.type()} ${os.release()}`,
    nodeVersion: process.versions.node,
    postgresVersion: postgresVersion(postgresBinDir),
    postgresBinDir,
    loadAverage: os.loadavg().map((value) => Number(value.toFixed(2))),
  };
}

function postgresVersion(binDir: string): string {
  try {
    const text = execFileSync(path.join(binDir, 'postgres'), ['--version'], { encoding: 'utf8' });
    return /(\d+(?:\.\d+)?)/.exec(text)?.[1] ?? text.trim();
  } catch {
    return 'unknown';
  }
}
