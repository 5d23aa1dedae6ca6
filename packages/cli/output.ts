// Output helpers: JSON for scripts (protobuf JSON, enum names, every field), aligned tables and short
// human forms for people. Nothing here ever receives a secret: API responses carry none.
// Human output shows control characters escaped (`\x1b`): a worker's hostname, a job's last error or any
// other server-supplied text could otherwise move the cursor, recolour or rewrite the terminal, retitle the
// window or hide lines. JSON output stays exact (JSON.stringify escapes C0 itself).
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

// C0 controls (tab, CR and ESC included), DEL and C1 controls (U+0080–U+009F, e.g. the 8-bit CSI U+009B).
// biome-ignore lint/suspicious/noControlCharactersInRegex: these are exactly the characters to escape
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/g;
// biome-ignore lint/suspicious/noControlCharactersInRegex: the same, sparing the line feed
const CONTROL_BUT_NEWLINE = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/g;

/**
 * `text` with every control character shown as `\xHH`, so it prints as itself and never acts on the
 * terminal (an ESC sequence stays visible as `\x1b[…`). With `multiline`, line feeds are kept: for text
 * whose lines are meant (println's joined lines); everything else, a carriage return included, is escaped.
 */
export function visible(text: string, options: { multiline?: boolean } = {}): string {
  return text.replace(options.multiline ? CONTROL_BUT_NEWLINE : CONTROL, (char) => {
    return `\\x${char.charCodeAt(0).toString(16).padStart(2, '0')}`;
  });
}

/** Writes one human-readable line (or several joined by `\n`), control characters escaped. */
export function println(context: CommandContext, text = ''): void {
  context.stdout.write(`${visible(text, { multiline: true })}\n`);
}

/** Aligned columns; each cell is one line, so a line feed inside a cell is escaped too. */
export function table(cells: string[][]): string {
  if (cells.length === 0) return '';
  const rows = cells.map((row) => row.map((cell) => visible(cell)));
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
