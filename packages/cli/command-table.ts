// The argument layer: one table of commands (name, summary, arguments, flags, run) from which parsing,
// validation and every `--help` text are derived, on top of node:util parseArgs. A command without a help
// text can't exist: `summary` is required, and the help test walks this table.
import { parseArgs } from 'node:util';
import { EXIT, EXIT_CODE_HELP, usageError } from './cli-error.ts';

export interface FlagSpec {
  type: 'string' | 'boolean';
  /** One line for `--help`. */
  description: string;
  /** Placeholder shown in help (`FILE`, `NAME`); string flags only. */
  value?: string;
  /** May be given several times; the value is then a list. */
  multiple?: boolean;
  short?: string;
  /** Environment variable used when the flag is absent (the design's names). */
  env?: string;
  required?: boolean;
  /** Shown in help; applied by the command. */
  default?: string;
}

export interface ArgSpec {
  name: string;
  description: string;
  optional?: boolean;
}

export type FlagValues = Record<string, string | boolean | string[] | undefined>;

export interface CommandContext {
  /** Flags as given, with `env` fallbacks applied. */
  flags: FlagValues;
  /** Positional arguments, in `args` order. */
  args: string[];
  /** `--json`: machine-readable output on stdout. */
  json: boolean;
  /** The full command path, e.g. `job status`. */
  path: string;
  env: NodeJS.ProcessEnv;
  stdout: NodeJS.WriteStream;
  stderr: NodeJS.WriteStream;
}

export interface CommandSpec {
  name: string;
  /** One line: what it does. */
  summary: string;
  /** Further paragraphs for its `--help`. */
  description?: string;
  args?: ArgSpec[];
  flags?: Record<string, FlagSpec>;
  examples?: string[];
  subcommands?: CommandSpec[];
  /** Returns the exit code (0 when undefined). */
  run?: (context: CommandContext) => Promise<number | undefined>;
}

/** Flags every command accepts. */
export const GLOBAL_FLAGS: Record<string, FlagSpec> = {
  'control-plane': {
    type: 'string',
    value: 'URL',
    env: 'SLUICE_CONTROL_PLANE',
    description:
      'control plane address, https://host:port (default: the logged-in one, else https://127.0.0.1:8443)',
  },
  'ca-file': {
    type: 'string',
    value: 'FILE',
    env: 'SLUICE_CA_FILE',
    description: "PEM CA bundle that signed the control plane's certificate (default: the system's)",
  },
  'state-dir': {
    type: 'string',
    value: 'DIR',
    env: 'SLUICE_STATE_DIR',
    description: 'where the login session is kept (default ~/.config/sluice)',
  },
  json: { type: 'boolean', description: 'machine-readable JSON on stdout' },
  help: { type: 'boolean', short: 'h', description: 'show help for this command' },
};

export interface Resolved {
  command: CommandSpec;
  /** Names from the root, e.g. ['sluice', 'job', 'status']. */
  path: CommandSpec[];
  rest: string[];
}

/** Walks leading words down the subcommand tree. */
export function resolveCommand(root: CommandSpec, argv: string[]): Resolved {
  const path = [root];
  let command = root;
  let index = 0;
  while (index < argv.length) {
    const word = argv[index];
    const next = command.subcommands?.find((sub) => sub.name === word);
    if (!next) break;
    command = next;
    path.push(next);
    index++;
  }
  return { command, path, rest: argv.slice(index) };
}

/** Parses `rest` against the command's flags and arguments; throws a usage CliError. */
export function parseCommandLine(
  resolved: Resolved,
  env: NodeJS.ProcessEnv,
): { flags: FlagValues; args: string[]; help: boolean; json: boolean } {
  const specs = { ...GLOBAL_FLAGS, ...resolved.command.flags };
  const options: Record<string, { type: 'string' | 'boolean'; multiple?: boolean; short?: string }> = {};
  for (const [name, spec] of Object.entries(specs)) {
    options[name] = {
      type: spec.type,
      ...(spec.multiple && { multiple: true }),
      ...(spec.short && { short: spec.short }),
    };
  }
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: resolved.rest, options, allowPositionals: true, strict: true });
  } catch (error) {
    // A help request wins over anything else wrong on the line.
    if (resolved.rest.includes('--help') || resolved.rest.includes('-h'))
      return { flags: {}, args: [], help: true, json: false };
    throw usageError(`${(error as Error).message.split('\n')[0]} (see ${commandName(resolved.path)} --help)`);
  }
  const values = parsed.values as FlagValues;
  const help = values.help === true;
  const json = values.json === true;
  if (help) return { flags: values, args: parsed.positionals, help, json };

  const command = resolved.command;
  const name = commandName(resolved.path);
  if (!command.run) {
    const word = parsed.positionals[0];
    throw usageError(
      word === undefined
        ? `${name} needs a subcommand (see ${name} --help)`
        : `unknown command ${JSON.stringify(word)} for ${name} (see ${name} --help)`,
    );
  }
  const argSpecs = command.args ?? [];
  const required = argSpecs.filter((arg) => !arg.optional).length;
  if (parsed.positionals.length < required) {
    const missing = argSpecs[parsed.positionals.length];
    throw usageError(`${name}: missing <${missing?.name}> (see ${name} --help)`);
  }
  if (parsed.positionals.length > argSpecs.length)
    throw usageError(
      `${name}: unexpected argument ${JSON.stringify(parsed.positionals[argSpecs.length])} (see ${name} --help)`,
    );
  const flags: FlagValues = { ...values };
  for (const [flag, spec] of Object.entries(specs)) {
    if (flags[flag] === undefined && spec.env && env[spec.env]) flags[flag] = env[spec.env];
    if (spec.required && (flags[flag] === undefined || flags[flag] === ''))
      throw usageError(`${name}: --${flag} is required (see ${name} --help)`);
  }
  return { flags, args: parsed.positionals, help, json };
}

export function commandName(path: CommandSpec[]): string {
  return path.map((command) => command.name).join(' ');
}

/** The full `--help` text of a command, from the table alone. */
export function helpText(path: CommandSpec[]): string {
  const command = path[path.length - 1]!;
  const name = commandName(path);
  const lines: string[] = [];
  const args = (command.args ?? []).map((arg) => (arg.optional ? `[${arg.name}]` : `<${arg.name}>`));
  const usage = [name];
  if (command.subcommands?.length) usage.push(command.run ? '[command]' : '<command>');
  usage.push(...args, '[flags]');
  lines.push(`Usage: ${usage.join(' ')}`, '', command.summary);
  if (command.description) lines.push('', command.description);
  if (command.subcommands?.length) {
    lines.push('', 'Commands:');
    const width = Math.max(...command.subcommands.map((sub) => sub.name.length));
    for (const sub of command.subcommands) lines.push(`  ${sub.name.padEnd(width)}  ${sub.summary}`);
  }
  if (command.args?.length) {
    lines.push('', 'Arguments:');
    const width = Math.max(...command.args.map((arg) => arg.name.length));
    for (const arg of command.args) lines.push(`  ${arg.name.padEnd(width)}  ${arg.description}`);
  }
  if (command.flags && Object.keys(command.flags).length > 0)
    lines.push('', 'Flags:', ...flagLines(command.flags));
  lines.push('', 'Global flags:', ...flagLines(GLOBAL_FLAGS));
  if (command.examples?.length) lines.push('', 'Examples:', ...command.examples.map((e) => `  ${e}`));
  if (path.length === 1) {
    lines.push('', 'Exit codes:');
    for (const [code, meaning] of EXIT_CODE_HELP) lines.push(`  ${code}  ${meaning}`);
  }
  if (command.subcommands?.length) lines.push('', `Run '${name} <command> --help' for a command's flags.`);
  return `${lines.join('\n')}\n`;
}

function flagLines(flags: Record<string, FlagSpec>): string[] {
  const left = Object.entries(flags).map(([name, spec]) => {
    const short = spec.short ? `-${spec.short}, ` : '';
    const value = spec.type === 'string' ? ` ${spec.value ?? 'VALUE'}` : '';
    return `  ${short}--${name}${value}`;
  });
  const width = Math.max(...left.map((text) => text.length));
  return Object.values(flags).map((spec, i) => {
    const notes: string[] = [];
    if (spec.required) notes.push('required');
    if (spec.multiple) notes.push('repeatable');
    if (spec.default !== undefined) notes.push(`default ${spec.default}`);
    if (spec.env) notes.push(`env ${spec.env}`);
    const suffix = notes.length ? ` [${notes.join('; ')}]` : '';
    return `${left[i]!.padEnd(width)}  ${spec.description}${suffix}`;
  });
}

/** Every command in the tree with its path, for the help test and for `sluice help`. */
export function allCommands(root: CommandSpec): CommandSpec[][] {
  const out: CommandSpec[][] = [];
  const walk = (path: CommandSpec[]) => {
    out.push(path);
    for (const sub of path[path.length - 1]!.subcommands ?? []) walk([...path, sub]);
  };
  walk([root]);
  return out;
}

export function stringFlag(flags: FlagValues, name: string): string | undefined {
  const value = flags[name];
  if (Array.isArray(value)) return value[value.length - 1];
  return typeof value === 'string' ? value : undefined;
}

export function listFlag(flags: FlagValues, name: string): string[] {
  const value = flags[name];
  if (Array.isArray(value)) return value;
  return typeof value === 'string' ? [value] : [];
}

export function integerFlag(
  flags: FlagValues,
  name: string,
  range: { min: number; max: number },
): number | undefined {
  const text = stringFlag(flags, name);
  if (text === undefined) return undefined;
  const value = Number(text);
  if (!/^\d+$/.test(text) || value < range.min || value > range.max)
    throw usageError(`--${name} must be a whole number from ${range.min} to ${range.max}`);
  return value;
}

export { EXIT };
