// What every scenario measures: wall time, CPU time (this process, or another process by pid from
// /proc), peak RSS, and percentiles of latency samples.
import { readdirSync, readFileSync } from 'node:fs';

/** Linux clock ticks per second for /proc/<pid>/stat (USER_HZ, 100 on every mainstream kernel). */
const CLOCK_TICKS = 100;

export interface Span {
  /** Wall seconds. */
  seconds: number;
  /** CPU seconds (user + system) of the process measured. */
  cpuSeconds: number;
}

/** Measures this process from now on: `stop()` returns the wall and CPU time since `start`. */
export function startSelfSpan(): { stop(): Span } {
  const wall = performance.now();
  const cpu = process.cpuUsage();
  return {
    stop() {
      const used = process.cpuUsage(cpu);
      return { seconds: (performance.now() - wall) / 1000, cpuSeconds: (used.user + used.system) / 1e6 };
    },
  };
}

/** CPU seconds (user + system) a live process has used so far, from /proc/<pid>/stat. */
export function processCpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name is parenthesised and may hold spaces: fields are counted after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return (utime + stime) / CLOCK_TICKS;
}

/** Peak resident set (VmHWM) of a live process in MiB, from /proc/<pid>/status. */
export function processPeakRssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = /^VmHWM:\s+(\d+) kB/m.exec(status);
  return match ? Number(match[1]) / 1024 : Number.NaN;
}

/** Current resident set (VmRSS) of a live process in MiB. */
export function processRssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = /^VmRSS:\s+(\d+) kB/m.exec(status);
  return match ? Number(match[1]) / 1024 : Number.NaN;
}

/** This process's peak RSS in MiB so far (the kernel's maxrss, which never goes down). */
export function selfPeakRssMiB(): number {
  return process.resourceUsage().maxRSS / 1024;
}

/**
 * Samples another process's CPU from now on; `stop()` returns wall and CPU time since `start`. Reads
 * /proc, so it works for any process of this user (a child, or a server's backend).
 */
export function startProcessSpan(pid: number): { stop(): Span } {
  const wall = performance.now();
  const cpu = processCpuSeconds(pid);
  return {
    stop() {
      return { seconds: (performance.now() - wall) / 1000, cpuSeconds: processCpuSeconds(pid) - cpu };
    },
  };
}

export interface Percentiles {
  count: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

/** Nearest-rank percentiles of `samples` (not modified); zeros when there are none. */
export function percentiles(samples: readonly number[]): Percentiles {
  if (samples.length === 0) return { count: 0, p50: 0, p95: 0, p99: 0, max: 0 };
  const sorted = Float64Array.from(samples).sort();
  const rank = (p: number) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
  return {
    count: sorted.length,
    p50: rank(50),
    p95: rank(95),
    p99: rank(99),
    max: sorted[sorted.length - 1]!,
  };
}

/** Rounds to `digits` significant digits, so the JSON carries no false precision. */
export function round(value: number, digits = 3): number {
  if (!Number.isFinite(value) || value === 0) return value;
  return Number(value.toPrecision(digits));
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * CPU seconds used so far by a PostgreSQL server: its postmaster and every live child (backends, walsenders,
 * background workers), found from the backend serving `backendPid`. CPU of backends that already exited is
 * not counted, so measure over spans in which the clients of interest keep their connections.
 */
export function postgresCpuSeconds(backendPid: number): number {
  const postmaster = parentPid(backendPid);
  let total = processCpuSeconds(postmaster);
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (parentPid(Number(entry)) === postmaster) total += processCpuSeconds(Number(entry));
    } catch {
      // exited meanwhile
    }
  }
  return total;
}

function parentPid(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
}
