// `sluice job create --column-as / --on-unrepresentable`: parsed before anything is sent, so every mistake is
// a usage error (exit 2) naming the flag and what was typed; and how status shows the job's choices.
import { create } from '@bufbuild/protobuf';
import {
  ColumnTarget,
  JobSchema,
  JobState,
  JobStatusSchema,
  TableState,
  UnrepresentablePolicy,
} from '@sluice/proto';
import { describe, expect, it } from 'vitest';
import { parseColumnOptions } from './commands/job.ts';
import { renderJobStatus, statusLine } from './job-status-view.ts';
import { runCli } from './sluice-command.ts';

async function sluice(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const stream = (into: string[]) =>
    ({
      write: (text: string) => {
        into.push(text);
        return true;
      },
      isTTY: false,
    }) as unknown as NodeJS.WriteStream;
  const code = await runCli(args, { stdout: stream(out), stderr: stream(err), env: {} });
  return { code, out: out.join(''), err: err.join('') };
}

const create_ = (...extra: string[]) =>
  sluice([
    'job',
    'create',
    '--name',
    'j',
    '--source',
    'src',
    '--sink',
    'dst',
    '--table',
    'public.t',
    ...extra,
  ]);

describe('job create: column choices', () => {
  it('merges --column-as and --on-unrepresentable of one column into one option', () => {
    const options = parseColumnOptions(
      ['public.t.born=text', 'public.t.plain=default'],
      ['public.t.born=null', 'public.t.ratio=clamp', 'public.t.strict=fail'],
      [],
    );
    expect(
      options.map((o) => [
        o.column?.table?.schema,
        o.column?.table?.name,
        o.column?.column,
        o.target,
        o.onUnrepresentable,
      ]),
    ).toEqual([
      ['public', 't', 'born', ColumnTarget.TEXT, UnrepresentablePolicy.NULL],
      ['public', 't', 'plain', ColumnTarget.UNSPECIFIED, UnrepresentablePolicy.UNSPECIFIED],
      ['public', 't', 'ratio', ColumnTarget.UNSPECIFIED, UnrepresentablePolicy.CLAMP],
      ['public', 't', 'strict', ColumnTarget.UNSPECIFIED, UnrepresentablePolicy.FAIL],
    ]);
  });

  it.each([
    [
      'an unknown target',
      ['--column-as', 'public.t.c=txt'],
      '--column-as "public.t.c=txt": "txt" is not one of text, default (schema.table.column=text|default)',
    ],
    [
      'an unknown policy',
      ['--on-unrepresentable', 'public.t.c=zero'],
      '--on-unrepresentable "public.t.c=zero": "zero" is not one of fail, null, clamp (schema.table.column=fail|null|clamp)',
    ],
    [
      'a policy in upper case',
      ['--on-unrepresentable', 'public.t.c=NULL'],
      '"NULL" is not one of fail, null, clamp',
    ],
    [
      'no value',
      ['--column-as', 'public.t.c'],
      '--column-as "public.t.c" must be schema.table.column=text|default',
    ],
    [
      'a column without its schema',
      ['--on-unrepresentable', 't.c=clamp'],
      '--on-unrepresentable "t.c=clamp" must be schema.table.column=fail|null|clamp',
    ],
    [
      'one column twice in a flag',
      ['--column-as', 'public.t.c=text', '--column-as', 'public.t.c=default'],
      '--column-as "public.t.c=default": the column is given twice; give it once',
    ],
    [
      'an excluded column with a choice',
      ['--exclude-column', 'public.t.c', '--on-unrepresentable', 'public.t.c=null'],
      "--exclude-column public.t.c never reaches the sink, so it can't also have --column-as or --on-unrepresentable",
    ],
  ])('refuses %s with exit 2 before connecting', async (_name, flags, message) => {
    const run = await create_(...flags);
    expect(run.err).toContain(message);
    expect(run.code).toBe(2);
    expect(run.err).not.toMatch(/logged in/);
  });

  it('documents both flags in one line each', async () => {
    const help = await sluice(['job', 'create', '--help']);
    expect(help.code).toBe(0);
    expect(help.out).toMatch(
      /--column-as SCHEMA\.TABLE\.COLUMN=TYPE +text: land the column as VARCHAR .* \[repeatable\]\n/,
    );
    expect(help.out).toMatch(
      /--on-unrepresentable SCHEMA\.TABLE\.COLUMN=POLICY +for values the column's StarRocks type can't hold exactly: fail .*null .*clamp .* \[repeatable\]\n/,
    );
  });
});

describe('job status shows the choices and what they did', () => {
  const table = { schema: 'public', name: 'orders' };
  const job = create(JobSchema, {
    id: 'a1b2c3d4-0000-4000-8000-000000000000',
    name: 'orders',
    tables: [table, { schema: 'public', name: 'items' }],
    state: JobState.RUNNING,
    options: {
      columnOptions: [
        { column: { table, column: 'placed' }, target: ColumnTarget.TEXT },
        { column: { table, column: 'ratio' }, onUnrepresentable: UnrepresentablePolicy.CLAMP },
      ],
    },
  });
  const status = create(JobStatusSchema, {
    state: JobState.RUNNING,
    tables: [
      { table, state: TableState.STREAMING, valuesNulled: 3n, valuesClamped: 1n },
      { table: { schema: 'public', name: 'items' }, state: TableState.STREAMING },
    ],
  });

  it('per table when non-zero, and the choices under the tables', () => {
    const lines = renderJobStatus(job, status, { bars: false });
    const orders = lines.findIndex((line) => line.includes('public.orders'));
    expect(lines[orders + 1]).toBe("    3 values nulled, 1 clamped (job's column choices)");
    expect(lines.filter((line) => line.includes('nulled'))).toHaveLength(1);
    expect(lines.slice(-3)).toEqual([
      '  column choices:',
      '    public.orders.placed  as text',
      '    public.orders.ratio   default type, unrepresentable values: clamp',
    ]);
    expect(statusLine(job, status)).toContain("3 values nulled, 1 clamped (job's column choices)");
  });
});
