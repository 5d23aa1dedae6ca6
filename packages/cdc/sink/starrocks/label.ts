// Deterministic Stream Load labels. The same job, table, epoch, LSN range and part always give the same
// label, so a retried load is recognised by StarRocks (`Label Already Exists`) instead of applied twice.
// Labels allow `[A-Za-z0-9_]` and at most 128 characters; anything else, or a name that could be read two
// ways once joined with `_`, is replaced by a SHA-256 digest of the exact parts.
import { createHash } from 'node:crypto';
import type { Lsn } from '../../change-event.ts';

/**
 * What makes a load unique. Two different batches of one table must never share all parts: use the LSNs of
 * the batch's first and last change (not the transaction's commit LSN, which every chunk of a large
 * transaction shares), and a retry of the same batch must repeat them exactly.
 */
export interface LabelParts {
  /** The job's id. */
  job: string;
  /** The lease epoch the batch was read under. */
  epoch: number | bigint;
  /** First and last LSN covered by the batch (inclusive). */
  startLsn: Lsn;
  endLsn: Lsn;
}

export const MAX_LABEL_LENGTH = 128;
const PLAIN = /^[A-Za-z0-9]+$/;

/**
 * `sluice_<job>_<table>_<epoch>_<start>_<end>[_<part>]` when every part is plain alphanumeric and the result
 * fits; otherwise `sluice_<readable prefix>_<40 hex digits of SHA-256>` (the prefix is only for people).
 */
export function streamLoadLabel(parts: LabelParts, table: string, part = 0): string {
  const lsn = `${parts.startLsn.toString(16)}_${parts.endLsn.toString(16)}`;
  const suffix = part === 0 ? '' : `_${part}`;
  const plain = `sluice_${parts.job}_${table}_${parts.epoch}_${lsn}${suffix}`;
  if (PLAIN.test(parts.job) && PLAIN.test(table) && plain.length <= MAX_LABEL_LENGTH) return plain;
  const digest = createHash('sha256')
    .update(JSON.stringify([parts.job, table, String(parts.epoch), lsn, part]))
    .digest('hex')
    .slice(0, 40);
  const readable = `${parts.job}_${table}`.replaceAll(/[^A-Za-z0-9]+/g, '_').slice(0, 60);
  return `sluice_${readable}_${digest}`.replaceAll(/_+/g, '_');
}

/** True for a label StarRocks accepts. */
export function isValidLabel(label: string): boolean {
  return label.length > 0 && label.length <= MAX_LABEL_LENGTH && /^[A-Za-z0-9_]+$/.test(label);
}
