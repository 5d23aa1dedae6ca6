// Durations on the command line, in the control plane's syntax: `90`, `90s`, `15m`, `2h`, `7d`.
import { usageError } from './cli-error.ts';

export function parseDuration(flag: string, value: string, minMs: number, maxMs: number): number {
  const match = /^(\d+)(ms|s|m|h|d)?$/.exec(value.trim());
  if (!match) throw usageError(`${flag} expects a duration such as 90s, 15m or 1h`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[match[2] ?? 's'] ?? 1000;
  const ms = Number(match[1]) * unit;
  if (ms < minMs || ms > maxMs)
    throw usageError(`${flag} must be between ${minMs / 1000}s and ${maxMs / 1000}s`);
  return ms;
}
