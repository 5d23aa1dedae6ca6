import { describe, expect, it } from 'vitest';
import { StarRocksError } from '../sink/starrocks/starrocks-error.ts';
import { SourceError } from '../source/postgres/source-error.ts';
import { classifyError, retryDelay } from './error-kind.ts';
import { TransformError } from './transforms.ts';

describe('classifyError', () => {
  it('retries broken connections, sink 5xx-style failures, lock timeouts and network errors', () => {
    expect(classifyError(new SourceError('connection', 'the replication connection closed')).kind).toBe(
      'transient',
    );
    expect(classifyError(new StarRocksError('transient', 'HTTP 503 from BE')).kind).toBe('transient');
    expect(classifyError(new SourceError('privilege', 'lock timeout', { sqlState: '55P03' })).kind).toBe(
      'transient',
    );
    expect(classifyError(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' })).kind).toBe(
      'transient',
    );
    expect(classifyError(new Error('Connection terminated unexpectedly')).kind).toBe('transient');
  });

  it('asks an operator about credentials, privileges, slots and refused types, with a one-line solution', () => {
    for (const error of [
      new SourceError('auth', 'password authentication failed for user "u"'),
      new SourceError('privilege', 'role lacks REPLICATION', { solution: 'alter role u replication' }),
      new SourceError('slot', 'slot sluice_x is missing'),
      new StarRocksError('operator', 'StarRocks datasource "s" rejected the credentials', {
        solution: 'fix the password',
      }),
      new TransformError('column "id" is part of the primary key'),
    ]) {
      const classified = classifyError(error);
      expect(classified.kind).toBe('operator');
      expect(classified.solution).toMatch(/\S/);
      expect(classified.solution).not.toContain('\n');
    }
    expect(classifyError(new SourceError('privilege', 'x', { solution: 'grant it' })).solution).toBe(
      'grant it',
    );
    expect(classifyError(new StarRocksError('operator', 'x')).side).toBe('sink');
    expect(classifyError(new SourceError('auth', 'x')).side).toBe('source');
  });

  it('treats protocol errors and anything unknown as fatal, with secrets scrubbed from the message', () => {
    expect(classifyError(new SourceError('protocol', 'unknown message')).kind).toBe('fatal');
    const classified = classifyError(new Error('boom postgres://u:hunter2secret@h/db'));
    expect(classified.kind).toBe('fatal');
    expect(classified.message).not.toContain('hunter2secret');
  });

  it('backs off with jitter under a cap', () => {
    const delays = Array.from({ length: 50 }, () => retryDelay(20, 5_000));
    expect(Math.max(...delays)).toBeLessThanOrEqual(5_000);
    expect(new Set(delays).size).toBeGreaterThan(1);
  });
});
