// A worker process whose jobs run a protocol-only runner (moves no rows): for tests of the worker protocol
// alone, whose jobs point at datasources that don't exist. A test double; the product worker runs the pipeline.
import { JobPhase, JobState, TableState } from '@sluice/proto';
import { type JobRunner, runWorker } from '@sluice/worker';

process.exitCode = await runWorker(process.env, { runner: () => createPlaceholderRunner() });

/**
 * Opens the job's credentials to prove the envelope path, then reports a snapshot phase followed by streaming
 * heartbeats, and releases its lease on drain. It moves no rows.
 */
function createPlaceholderRunner(reportEveryMs = 1_000): JobRunner {
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
