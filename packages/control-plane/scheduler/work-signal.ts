// Wakes PullJob long polls when work may have appeared, instead of every poll querying the catalog several
// times a second (with 1,000 workers that saturated the control plane). One LISTEN connection per control
// plane hears `sluice_work`, which catalog triggers send on any control plane's change (see
// migrations/0003_work_notify.sql). If the connection is lost, waits fall back to their timeout and the
// listener reconnects.
import type pg from 'pg';
import type { Logger } from 'pino';

export interface WorkSignal {
  /** Resolves when work may have appeared, after `ms`, or when a signal aborts — whichever comes first. */
  wait(ms: number, ...signals: AbortSignal[]): Promise<void>;
}

export function createWorkSignal(pool: pg.Pool, logger: Logger, shutdown: AbortSignal): WorkSignal {
  const waiters = new Set<() => void>();
  const wakeAll = () => {
    for (const wake of waiters) wake();
    waiters.clear();
  };
  let client: pg.PoolClient | undefined;

  const listen = async (): Promise<void> => {
    if (shutdown.aborted) return;
    try {
      const connection = await pool.connect();
      connection.on('notification', wakeAll);
      connection.on('error', () => {
        connection.release(true);
        if (client === connection) client = undefined;
        logger.warn('work notifications lost; reconnecting');
        setTimeout(() => void listen(), 1_000).unref();
      });
      await connection.query('listen sluice_work');
      client = connection;
    } catch {
      setTimeout(() => void listen(), 1_000).unref();
    }
  };
  void listen();
  shutdown.addEventListener(
    'abort',
    () => {
      wakeAll();
      client?.release(true);
      client = undefined;
    },
    { once: true },
  );

  return {
    wait(ms, ...signals) {
      return new Promise((resolve) => {
        const done = () => {
          clearTimeout(timer);
          waiters.delete(done);
          resolve();
        };
        const timer = setTimeout(done, ms);
        waiters.add(done);
        for (const signal of signals) {
          if (signal.aborted) return done();
          signal.addEventListener('abort', done, { once: true });
        }
      });
    },
  };
}
