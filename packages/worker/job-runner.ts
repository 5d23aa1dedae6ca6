// What the agent needs from whatever runs a leased job. The agent owns leases, credentials and the control
// plane; a runner owns the data path. A runner must save its checkpoint through `report` before it
// resolves `done` after a drain, because the next holder resumes from that checkpoint.
import type { MessageInitShape } from '@bufbuild/protobuf';
import {
  type JobLease,
  JobPhase,
  JobState,
  type ReportProgressRequestSchema,
  type ReportProgressResponse,
  TableState,
} from '@sluice/proto';
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

/**
 * PLACEHOLDER until the replication pipeline lands (issue "The replication pipeline, run by workers"): opens
 * the job's credentials to prove the envelope path, then reports a snapshot phase followed by streaming
 * heartbeats, and releases its lease on drain. It moves no rows.
 */
export function createPlaceholderRunner(reportEveryMs = 1_000): JobRunner {
  return (context) => {
    let drain = false;
    let wake: () => void = () => undefined;
    const stopped = new Promise<void>((resolve) => {
      wake = resolve;
    });
    context.signal.addEventListener('abort', () => wake(), { once: true });

    const done = (async () => {
      const credentials = await context.credentials();
      credentials.source.wipe();
      credentials.sink.wipe();
      credentials.piiKey?.wipe();
      const tables = (context.lease.spec?.job?.tables ?? []).map((table) => ({
        table,
        state: TableState.STREAMING,
      }));
      await context.report({ phase: JobPhase.SNAPSHOT, tables });
      while (!context.signal.aborted && !drain) {
        const answer = await context.report({ phase: JobPhase.STREAMING, tables });
        if (answer.desiredState !== JobState.RUNNING) return;
        await Promise.race([stopped, new Promise((resolve) => setTimeout(resolve, reportEveryMs))]);
      }
      if (drain && !context.signal.aborted) {
        await context.report({ phase: JobPhase.STREAMING, tables, released: true });
      }
    })();

    return {
      stop(options) {
        drain = options.drain;
        wake();
      },
      done,
    };
  };
}
