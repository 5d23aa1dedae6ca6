// Server-supplied text (a worker's hostname, a job's last error) must not drive the terminal in human output.
import { create } from '@bufbuild/protobuf';
import { JobSchema, JobStatusSchema, WorkerSchema } from '@sluice/proto';
import { describe, expect, it } from 'vitest';
import type { CommandContext } from './command-table.ts';
import { renderJobStatus } from './job-status-view.ts';
import { messageJson, printJson, println, table, visible } from './output.ts';

// Clears the screen, retitles the window (OSC … BEL), hides text in an 8-bit CSI, a DEL, a carriage return
// that would overwrite the line, and a tab.
const HOSTILE_HOST = 'evil\x1b[2J\x1b]0;owned\x07host\x9b31m\x7f\rfake\tcell';
const HOSTILE_ERROR =
  'connection lost\x1b[1A\x1b[2Kjob healthy\x1b]8;;https://evil.example\x1b\\click\x1b]8;;\x1b\\';

function capture(json = false): { context: CommandContext; text: () => string } {
  const chunks: string[] = [];
  const stdout = { write: (chunk: string) => chunks.push(chunk) } as unknown as NodeJS.WriteStream;
  return {
    context: { flags: {}, args: [], json, path: 'test', env: {}, stdout, stderr: stdout },
    text: () => chunks.join(''),
  };
}

/** Any C0 control but the line feed, DEL or C1 control. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: the test looks for exactly these
const RAW_CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/;

describe('human output escapes control characters', () => {
  it('shows every control character of a hostile hostname in a table as \\xHH', () => {
    const out = capture();
    println(
      out.context,
      table([
        ['ID', 'HOST', 'STATE'],
        ['w-1', HOSTILE_HOST, 'active'],
      ]),
    );
    const text = out.text();
    expect(text).not.toMatch(RAW_CONTROL);
    expect(text).toContain('evil\\x1b[2J\\x1b]0;owned\\x07host\\x9b31m\\x7f\\x0dfake\\x09cell');
    // One header line, one row: nothing in a cell can start a line of its own.
    expect(text.trimEnd().split('\n')).toHaveLength(2);
    const [header, row] = text.trimEnd().split('\n');
    expect(row!.indexOf('active')).toBe(header!.indexOf('STATE'));
  });

  it("escapes a job's last error in the status view but keeps the view's own lines", () => {
    const job = create(JobSchema, { id: 'j-1', name: 'orders' });
    const status = create(JobStatusSchema, {
      lastError: { message: `${HOSTILE_ERROR}\n  table orders  streaming  ok`, solution: 'retry\x1b[8m' },
    });
    const out = capture();
    const lines = renderJobStatus(job, status, { bars: false });
    println(out.context, lines.join('\n'));
    const text = out.text();
    expect(text).not.toMatch(RAW_CONTROL);
    expect(text).toContain(
      'connection lost\\x1b[1A\\x1b[2Kjob healthy\\x1b]8;;https://evil.example\\x1b\\click',
    );
    expect(text).toContain('what to do: retry\\x1b[8m');
    // A line break in the error can't forge a line of the view.
    expect(text).toContain('\\x0a  table orders  streaming  ok');
    expect(text.split('\n').length).toBe(lines.length + 1);
  });

  it('leaves --json output exact (JSON escapes C0 itself)', () => {
    const out = capture(true);
    printJson(
      out.context,
      messageJson(WorkerSchema, create(WorkerSchema, { id: 'w-1', hostname: HOSTILE_HOST })),
    );
    expect((JSON.parse(out.text()) as { hostname: string }).hostname).toBe(HOSTILE_HOST);
  });

  it('escapes a line feed only where a value must stay on one line', () => {
    expect(visible('a\nb')).toBe('a\\x0ab');
    expect(visible('a\nb', { multiline: true })).toBe('a\nb');
    expect(visible('plain ✓ text, ünïcode')).toBe('plain ✓ text, ünïcode');
  });
});
