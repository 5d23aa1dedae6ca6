// The contract between main.ts and the scenario files.
import type { PostgresServer } from '@sluice/testkit';
import type { ResultRow, ScenarioStatus } from './report.ts';

export interface BenchContext {
  quick: boolean;
  /** The PostgreSQL server under test (the system's PostgreSQL 15 where present, so its client tools match). */
  postgres: PostgresServer;
  /** Where `psql` and `pg_recvlogical` of the same major version live. */
  postgresBinDir: string;
  /** Filled by the streaming-decode scenario: pg_recvlogical's rows/s per case, for the end-to-end ratio. */
  references: Map<string, number>;
  /** Progress lines (stderr, so stdout stays the table). */
  log(line: string): void;
}

export interface ScenarioOutcome {
  status: ScenarioStatus;
  reason?: string;
  parameters: Record<string, number | string | boolean>;
  rows: ResultRow[];
}

export interface Scenario {
  /** Short name for `--only`. */
  name: string;
  title: string;
  run(context: BenchContext): Promise<ScenarioOutcome>;
}

/** A scenario that could not run here, and why: reported as such in the table and the JSON, never faked. */
export function skipped(reason: string): ScenarioOutcome {
  return { status: 'skipped', reason, parameters: {}, rows: [] };
}
