// How `job status` (and `sluice dev`) shows a job: phase, per-table snapshot progress — bars on a terminal,
// plain lines otherwise — rows/s, lag in bytes and seconds, and the last error.
import {
  ColumnTarget,
  ErrorKind,
  type Job,
  JobPhase,
  JobState,
  type JobStatus,
  TableState,
  UnrepresentablePolicy,
} from '@sluice/proto';
import { bytes, count, enumWord, visible, when } from './output.ts';

const BAR_WIDTH = 24;

export function stateWord(state: JobState): string {
  return enumWord(JobState, state);
}

export function phaseWord(phase: JobPhase): string {
  return phase === JobPhase.UNSPECIFIED ? '-' : enumWord(JobPhase, phase);
}

/**
 * The job's per-column choices (`--column-as`, `--on-unrepresentable`), one line each, under a heading; none
 * when it has none.
 */
export function describeColumnOptions(job: Job): string[] {
  const options = job.options?.columnOptions ?? [];
  if (options.length === 0) return [];
  const names = options.map((o) => `${o.column?.table?.schema}.${o.column?.table?.name}.${o.column?.column}`);
  const width = Math.max(...names.map((n) => n.length));
  return [
    '  column choices:',
    ...options.map((o, i) => {
      const parts = [o.target === ColumnTarget.TEXT ? 'as text' : 'default type'];
      if (o.onUnrepresentable !== UnrepresentablePolicy.UNSPECIFIED)
        parts.push(`unrepresentable values: ${enumWord(UnrepresentablePolicy, o.onUnrepresentable)}`);
      return `    ${names[i]!.padEnd(width)}  ${parts.join(', ')}`;
    }),
  ];
}

/** "3 values nulled, 1 clamped (job's column choices)", or undefined when the job adjusted none. */
export function adjustedValues(nulled: bigint, clamped: bigint): string | undefined {
  if (nulled === 0n && clamped === 0n) return undefined;
  const parts: string[] = [];
  const noun = (n: bigint) => (n === 1n ? 'value' : 'values');
  if (nulled > 0n) parts.push(`${count(nulled)} ${noun(nulled)} nulled`);
  if (clamped > 0n)
    parts.push(parts.length ? `${count(clamped)} clamped` : `${count(clamped)} ${noun(clamped)} clamped`);
  return `${parts.join(', ')} (job's column choices)`;
}

/** The status as lines; `bars` draws progress bars (for terminals). */
export function renderJobStatus(job: Job, status: JobStatus, options: { bars: boolean }): string[] {
  const lines: string[] = [];
  lines.push(
    `job ${job.name} (${job.id})`,
    `  state ${stateWord(status.state)}, phase ${phaseWord(status.phase)}` +
      (status.workerId ? `, worker ${status.workerId.slice(0, 8)}, epoch ${status.epoch}` : ''),
    `  throughput ${status.rowsPerSecond.toFixed(1)} rows/s, ${bytes(Math.round(status.bytesPerSecond))}/s` +
      `  lag ${bytes(status.lagBytes)} / ${status.lagSeconds.toFixed(1)} s` +
      `  reported ${when(status.reportedAt)}`,
  );
  const tables = status.tables.length
    ? status.tables
    : job.tables.map((table) => ({ table, state: TableState.UNSPECIFIED }) as JobStatus['tables'][number]);
  const names = tables.map((t) => `${t.table?.schema}.${t.table?.name}`);
  const width = Math.max(...names.map((n) => n.length), 5);
  tables.forEach((t, i) => {
    const name = names[i]!.padEnd(width);
    const state = t.state === TableState.UNSPECIFIED ? 'waiting' : enumWord(TableState, t.state);
    const copied = Number(t.snapshotRows ?? 0n);
    const estimate = Number(t.snapshotRowsEstimate ?? 0n);
    const fraction = snapshotFraction(t.state, copied, estimate, t.rangesDone ?? 0, t.rangesTotal ?? 0);
    const snapshot = `${count(copied)}${estimate ? ` / ~${count(estimate)}` : ''} rows copied`;
    const stream = `+${count(t.inserts ?? 0n)} ~${count(t.updates ?? 0n)} -${count(t.deletes ?? 0n)}`;
    if (options.bars) {
      const filled = Math.round(fraction * BAR_WIDTH);
      const bar = `[${'#'.repeat(filled)}${'-'.repeat(BAR_WIDTH - filled)}]`;
      lines.push(
        `  ${name}  ${bar} ${String(Math.round(fraction * 100)).padStart(3)}%  ${state.padEnd(9)} ${snapshot}  ${stream}`,
      );
    } else {
      lines.push(
        `  ${name}  ${state}  snapshot ${Math.round(fraction * 100)}% (${snapshot})  stream ${stream}`,
      );
    }
    const adjusted = adjustedValues(t.valuesNulled ?? 0n, t.valuesClamped ?? 0n);
    if (adjusted) lines.push(`    ${adjusted}`);
    if (t.error?.message) lines.push(`    error: ${t.error.message}`);
  });
  lines.push(...describeColumnOptions(job));
  const error = status.lastError;
  if (error?.message) {
    // Server text: one line each, control characters (line breaks too) shown escaped.
    lines.push(
      `  last error (${enumWord(ErrorKind, error.kind)}, ${when(error.at)}): ${visible(error.message)}`,
    );
    if (error.solution) lines.push(`    what to do: ${visible(error.solution)}`);
  }
  return lines;
}

function snapshotFraction(
  state: TableState,
  rows: number,
  estimate: number,
  done: number,
  total: number,
): number {
  if (state === TableState.COPIED || state === TableState.STREAMING) return 1;
  if (total > 0) return Math.min(1, done / total);
  if (estimate > 0) return Math.min(1, rows / estimate);
  return 0;
}

/** One line, for logs and non-terminal watches. */
export function statusLine(job: Job, status: JobStatus): string {
  return (
    `job ${job.name}: ${stateWord(status.state)}, phase ${phaseWord(status.phase)}, ` +
    `${status.rowsPerSecond.toFixed(1)} rows/s, lag ${bytes(status.lagBytes)} / ${status.lagSeconds.toFixed(1)} s, ` +
    `copied ${count(sum(status, (t) => t.snapshotRows))}, streamed +${count(sum(status, (t) => t.inserts))} ` +
    `~${count(sum(status, (t) => t.updates))} -${count(sum(status, (t) => t.deletes))}` +
    adjustedSuffix(
      sum(status, (t) => t.valuesNulled),
      sum(status, (t) => t.valuesClamped),
    ) +
    (status.lastError?.message ? `, last error: ${visible(status.lastError.message)}` : '')
  );
}

function adjustedSuffix(nulled: bigint, clamped: bigint): string {
  const text = adjustedValues(nulled, clamped);
  return text ? `, ${text}` : '';
}

function sum(status: JobStatus, field: (table: JobStatus['tables'][number]) => bigint): bigint {
  return status.tables.reduce((total, table) => total + field(table), 0n);
}
