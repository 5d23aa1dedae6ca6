// Run-wide canary scan. A test plants a secret with `plantCanary` (recorded in the run directory the global
// setup creates); every service process started by `startServiceProcess` also writes its output to a log
// file there; the global setup's teardown scans every log file for every canary (as is, base64, hex) and
// fails the run on a hit, naming the canary's label, the file and the line, never the value.
import {
  appendFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

/** Environment variable naming the run directory; set by the global setup, inherited by test workers. */
export const RUN_DIRECTORY_ENV = 'SLUICE_TEST_RUN_DIR';

const CANARIES_FILE = 'canaries.jsonl';
const LOGS_DIR = 'logs';

/** Creates an empty run directory (canary list and log folder) under the system's temporary directory. */
export function createRunDirectory(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'sluice-run-'));
  mkdirSync(path.join(dir, LOGS_DIR));
  return dir;
}

/** The current run's directory, or undefined outside a vitest run with the global setup (e.g. the bench). */
export function runDirectory(): string | undefined {
  const dir = process.env[RUN_DIRECTORY_ENV];
  return dir === undefined || dir === '' ? undefined : dir;
}

/** Where the caller of the caller of this function sits in the source, for a default label. */
function callerLocation(): string {
  const frames = (new Error().stack ?? '').split('\n').slice(1);
  const frame = frames.find((line) => !line.includes('canary.ts')) ?? '';
  const match = /(?:file:\/\/)?([^\s()]+):(\d+):\d+\)?$/.exec(frame.trim());
  if (!match) return 'unknown place';
  return `${path.relative(process.cwd(), match[1]!)}:${match[2]}`;
}

/**
 * Records `value` as a canary for the whole run and returns it: at the end of the run no log line of any
 * service process may hold it. The label (default: where it was planted) is what a failure names.
 */
export function plantCanary(value: string, label?: string, dir: string | undefined = runDirectory()): string {
  if (value.length < 8) throw new Error('plantCanary: a canary needs at least 8 characters');
  const name = label ?? `canary planted at ${callerLocation()}`;
  if (dir !== undefined)
    appendFileSync(path.join(dir, CANARIES_FILE), `${JSON.stringify({ label: name, value })}\n`);
  return value;
}

let logCounter = 0;

/** A fresh log file path in the run directory for one service process (undefined outside a run). */
export function serviceLogFile(name: string, dir: string | undefined = runDirectory()): string | undefined {
  if (dir === undefined) return undefined;
  const safe = name.replace(/[^A-Za-z0-9._-]+/g, '_').slice(0, 60) || 'process';
  logCounter += 1;
  return path.join(dir, LOGS_DIR, `${safe}-${process.pid}-${logCounter}.log`);
}

export interface Canary {
  label: string;
  value: string;
}

export interface CanaryHit {
  label: string;
  /** Which form of the canary was found: `plain`, `base64`, `base64url`, `hex`. */
  form: string;
  file: string;
  line: number;
}

export interface CanaryScan {
  canaries: number;
  logFiles: number;
  hits: CanaryHit[];
}

/**
 * The substrings that betray `value` when it is embedded, in any byte alignment, in base64 or base64url
 * text: for each of the three offsets, the characters encoding only the value's own bits.
 */
function base64Forms(value: Buffer): string[] {
  const forms: string[] = [];
  for (let offset = 0; offset < 3; offset++) {
    const encoded = Buffer.concat([Buffer.alloc(offset), value]).toString('base64');
    const first = Math.ceil((8 * offset) / 6);
    const last = Math.floor((8 * (offset + value.length)) / 6); // exclusive
    forms.push(encoded.slice(first, last));
  }
  return forms;
}

/** Every form of the canary that a scan looks for. */
export function canaryForms(value: string): { form: string; text: string }[] {
  const bytes = Buffer.from(value);
  const forms = [{ form: 'plain', text: value }];
  for (const text of base64Forms(bytes)) {
    forms.push({ form: 'base64', text });
    const url = text.replaceAll('+', '-').replaceAll('/', '_');
    if (url !== text) forms.push({ form: 'base64url', text: url });
  }
  const hex = bytes.toString('hex');
  forms.push({ form: 'hex', text: hex }, { form: 'hex', text: hex.toUpperCase() });
  return forms;
}

/** Reads the canaries planted in `dir` (one per distinct value, first label wins). */
export function readCanaries(dir: string): Canary[] {
  const file = path.join(dir, CANARIES_FILE);
  if (!existsSync(file)) return [];
  const byValue = new Map<string, Canary>();
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (line === '') continue;
    const canary = JSON.parse(line) as Canary;
    if (!byValue.has(canary.value)) byValue.set(canary.value, canary);
  }
  return [...byValue.values()];
}

/** Scans every log file of the run directory for every planted canary. */
export function scanRunDirectory(dir: string): CanaryScan {
  const canaries = readCanaries(dir);
  const patterns = canaries.flatMap((canary) =>
    canaryForms(canary.value).map(({ form, text }) => ({ label: canary.label, form, text })),
  );
  const logsDir = path.join(dir, LOGS_DIR);
  const files = existsSync(logsDir) ? readdirSync(logsDir).sort() : [];
  const hits: CanaryHit[] = [];
  for (const name of files) {
    const file = path.join(logsDir, name);
    const lines = readFileSync(file, 'utf8').split('\n');
    lines.forEach((text, index) => {
      for (const pattern of patterns) {
        if (text.includes(pattern.text)) {
          hits.push({ label: pattern.label, form: pattern.form, file, line: index + 1 });
        }
      }
    });
  }
  return { canaries: canaries.length, logFiles: files.length, hits };
}

/** Throws on any canary in any log file of the run; otherwise returns the one-line summary. */
export function checkRunDirectory(dir: string): string {
  const scan = scanRunDirectory(dir);
  if (scan.hits.length > 0) {
    const shown = scan.hits
      .slice(0, 20)
      .map((hit) => `  ${hit.label} (${hit.form}) in ${hit.file}:${hit.line}`)
      .join('\n');
    const more = scan.hits.length > 20 ? `\n  … and ${scan.hits.length - 20} more` : '';
    throw new Error(
      `canary scan: ${scan.hits.length} hit(s) of planted canaries in service logs (run directory kept: ${dir}):\n${shown}${more}`,
    );
  }
  return `canary scan: ${scan.canaries} canaries, ${scan.logFiles} log files, no hit`;
}

export interface CanaryRun {
  readonly directory: string;
  /** Scans the run's logs: throws on a hit (keeping the directory), else prints the summary and cleans up. */
  finish(): void;
}

/**
 * Starts a run for a vitest global setup: creates the run directory and names it in this process's
 * environment, which the test workers (forked after the global setup) inherit.
 */
export function startCanaryRun(): CanaryRun {
  const directory = createRunDirectory();
  process.env[RUN_DIRECTORY_ENV] = directory;
  return {
    directory,
    finish() {
      process.stdout.write(`${checkRunDirectory(directory)}\n`);
      rmSync(directory, { recursive: true, force: true });
    },
  };
}
