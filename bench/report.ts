// The results: one model for the stdout table and the JSON file, so both always carry the same numbers.
import { writeFile } from 'node:fs/promises';
import type { Machine } from './machine.ts';

/** One measured figure of one subject, with the reference it is read against (measured in the same run). */
export interface ResultRow {
  /** The workload, e.g. `1 txn × 1,000,000 rows`. */
  case: string;
  /** Who was measured, e.g. `pg_recvlogical (reference)`, `Sluice source`. */
  subject: string;
  /** What the figure is, e.g. `rows/s`. */
  metric: string;
  value: number;
  /** The reference's figure for the same metric, when there is one. */
  reference?: number;
  /** `value / reference` (higher is better for rates; for latencies the ratio is not given). */
  ratio?: number;
  /** Secondary figures: CPU µs/row, MB/s, RSS, percentiles… */
  details?: Record<string, number | string | boolean>;
}

export type ScenarioStatus = 'ok' | 'skipped' | 'failed';

export interface ScenarioResult {
  name: string;
  title: string;
  status: ScenarioStatus;
  /** Why it was skipped or what failed. */
  reason?: string;
  /** Sizes and settings the numbers depend on. */
  parameters: Record<string, number | string | boolean>;
  rows: ResultRow[];
  /** Wall seconds the scenario took, setup included. */
  seconds: number;
}

export interface BenchReport {
  /** Version of this JSON shape. */
  format: 1;
  startedAt: string;
  finishedAt: string;
  quick: boolean;
  machine: Machine;
  scenarios: ScenarioResult[];
}

/** `value / reference`, or undefined when there is no usable reference. */
export function ratio(value: number, reference: number | undefined): number | undefined {
  if (reference === undefined || !Number.isFinite(reference) || reference <= 0) return undefined;
  return value / reference;
}

export async function writeJson(path: string, report: BenchReport): Promise<void> {
  await writeFile(path, `${JSON.stringify(report, null, 2)}\n`);
}

/** Plain-text table: one block per scenario, one line per row. */
export function formatTable(report: BenchReport): string {
  const out: string[] = [];
  const m = report.machine;
  out.push(
    `Sluice bench ${report.quick ? '(quick) ' : ''}— ${report.startedAt}`,
    `${m.cpuModel}, ${m.cores} cores, ${m.memoryGiB} GiB; Node ${m.nodeVersion}; PostgreSQL ${m.postgresVersion}; load ${m.loadAverage.join(' ')}`,
    '',
  );
  for (const scenario of report.scenarios) {
    out.push(`## ${scenario.title} [${scenario.status}${scenario.reason ? `: ${scenario.reason}` : ''}]`);
    const params = Object.entries(scenario.parameters)
      .map(([key, value]) => `${key}=${formatValue(value)}`)
      .join(' ');
    if (params) out.push(`   ${params}`);
    if (scenario.rows.length === 0) {
      out.push('');
      continue;
    }
    const header = ['case', 'subject', 'figure', 'reference', 'ratio', 'details'];
    const lines = scenario.rows.map((row) => [
      row.case,
      row.subject,
      `${formatNumber(row.value)} ${row.metric}`,
      row.reference === undefined ? '' : formatNumber(row.reference),
      row.ratio === undefined ? '' : `${row.ratio.toFixed(2)}×`,
      Object.entries(row.details ?? {})
        .map(([key, value]) => `${key}=${formatValue(value)}`)
        .join(' '),
    ]);
    const widths = header.map((title, column) =>
      Math.max(title.length, ...lines.map((line) => line[column]!.length)),
    );
    const render = (cells: string[]) =>
      `   ${cells.map((cell, column) => cell.padEnd(widths[column]!)).join('  ')}`.trimEnd();
    out.push(render(header), render(widths.map((width) => '-'.repeat(width))));
    for (const line of lines) out.push(render(line));
    out.push('');
  }
  return out.join('\n');
}

function formatValue(value: number | string | boolean): string {
  return typeof value === 'number' ? formatNumber(value) : String(value);
}

/** Thousands separators for large figures, three significant digits for small ones. */
export function formatNumber(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  if (Math.abs(value) >= 1000) return Math.round(value).toLocaleString('en-US');
  if (Number.isInteger(value)) return String(value);
  return String(Number(value.toPrecision(3)));
}
