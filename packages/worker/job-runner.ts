// What the agent needs from whatever runs a leased job. The agent owns leases, credentials and the control
// plane; a runner owns the data path. A runner must save its checkpoint through `report` before it
// resolves `done` after a drain, because the next holder resumes from that checkpoint.
import type { MessageInitShape } from '@bufbuild/protobuf';
import type { JobLease, ReportProgressRequestSchema, ReportProgressResponse } from '@sluice/proto';
import type { Logger } from 'pino';
import type { JobCredentials } from './credentials.ts';

export type ProgressReport = Omit<
  MessageInitShape<typeof ReportProgressRequestSchema>,
  'jobId' | 'epoch' | '$typeName'
>;

export interface JobContext {
  lease: JobLease;
  /** Fetches and opens this lease's credentials; call it when connecting, drop the result afterwards. */
  credentials(): Promise<JobCredentials>;
  /** Reports progress under the lease's epoch; rejects with `StaleLeaseError` when the lease moved on. */
  report(progress: ProgressReport): Promise<ReportProgressResponse>;
  /** Aborted when the job must stop now (lease lost, stop instruction); `reason` says why. */
  signal: AbortSignal;
  logger: Logger;
}

export interface JobRun {
  /**
   * Asks the run to end. With `drain`, finish the in-flight batch, save the checkpoint with
   * `released: true`, then resolve `done`; without, stop as soon as possible (the lease is gone).
   */
  stop(options: { drain: boolean; reason: string }): void;
  /** Settles when the run has ended; rejects with the error that ended it. */
  done: Promise<void>;
}

export type JobRunner = (context: JobContext) => JobRun;

/** The control plane refused a report because another grant of the job has a higher epoch. */
export class StaleLeaseError extends Error {
  override name = 'StaleLeaseError';
}
