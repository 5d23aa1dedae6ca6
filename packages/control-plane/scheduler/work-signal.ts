// Wakes PullJob long polls when work may have appeared, instead of every poll querying the catalog several
// times a second (with 1,000 workers that saturated the control plane). One LISTEN connection per control
// plane hears `sluice_work`, which catalog triggers send on any control plane's change (see
// migrations/0003_work_notify.sql). If the connection is lost, waits fall back to their timeout and the
// listener reconnects.
import type pg from 'pg';
import type { Logger } from 'pino';

export interface WorkSignal {
  /**
   * Resolves when work may have appeared (any poll), when `wake(key)` is called for this poll's key, after
   * `ms`, or when a signal aborts — whichever comes first.
   */
  wait(ms: number, key: string, ...signals: AbortSignal[]): Promise<void>;
  /** Wakes only the polls waiting under `key` (a worker whose own state changed, e.g. it announced a drain). */
  wake(key: string): void;
}

export function createWorkSignal(pool: pg.Pool, logger: Logger, shutdown: AbortSignal): WorkSignal {
  const waiters = new Map<() => void, string>();
  const wakeAll = () => {
    for (const wake of [...waiters.keys()]) wake();
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
    wake(key) {
      for (const [wake, waiting] of [...waiters]) if (waiting === key) wake();
    },
    wait(ms, key, ...signals) {
      return new Promise((resolve) => {
        const done = () => {
          clearTimeout(timer);
          waiters.delete(done);
          resolve();
        };
        const timer = setTimeout(done, ms);
        waiters.set(done, key);
        for (const signal of signals) {
          if (signal.aborted) return done();
          signal.addEventListener('abort', done, { once: true });
        }
      });
    },
  };
}
