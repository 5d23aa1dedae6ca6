// Output helpers: JSON for scripts (protobuf JSON, enum names, every field), aligned tables and short
// human forms for people. Nothing here ever receives a secret: API responses carry none.
import type { DescMessage, MessageShape } from '@bufbuild/protobuf';
import { toJson } from '@bufbuild/protobuf';
import { type Timestamp, timestampDate } from '@bufbuild/protobuf/wkt';
import type { CommandContext } from './command-table.ts';

export function messageJson<D extends DescMessage>(schema: D, message: MessageShape<D>): unknown {
  return toJson(schema, message, { alwaysEmitImplicit: true });
}

export function printJson(context: CommandContext, value: unknown): void {
  context.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

export function println(context: CommandContext, text = ''): void {
  context.stdout.write(`${text}\n`);
}

export function table(rows: string[][]): string {
  if (rows.length === 0) return '';
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => (row[column] ?? '').length)));
  return rows
    .map((row) =>
      row
        .map((cell, column) => (column === row.length - 1 ? cell : cell.padEnd(widths[column]!)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** A generated enum value as a word: `JobState.RUNNING` → `running`, `SslMode.VERIFY_FULL` → `verify-full`. */
export function enumWord(values: Record<string, number>, value: number): string {
  const name = Object.entries(values).find(([, v]) => v === value)?.[0];
  return name === undefined ? String(value) : name.toLowerCase().replaceAll('_', '-');
}

export function when(timestamp: Timestamp | undefined): string {
  return timestamp
    ? timestampDate(timestamp)
        .toISOString()
        .replace(/\.\d+Z$/, 'Z')
    : '-';
}

export function bytes(value: number | bigint): string {
  let n = Number(value);
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let unit = 0;
  while (n >= 1024 && unit < units.length - 1) {
    n /= 1024;
    unit++;
  }
  return unit === 0 ? `${n} B` : `${n.toFixed(1)} ${units[unit]}`;
}

export function count(value: number | bigint): string {
  return Number(value).toLocaleString('en-US');
}
