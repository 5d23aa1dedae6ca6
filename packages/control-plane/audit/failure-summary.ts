// Failed anonymous calls (logins, refreshes) audited as a summarised stream: instead of one chained row per
// failure — which lets anyone flood the audit table — failures are counted per action, user and client IP,
// and every window each count becomes one row: `{action: 'login.failed', user_id (when the name is a real
// user), ip_address, outcome: 'denied', resource_id: 'count=<n>'}`, timestamped when the window closes.
// Counting is O(1) in memory; the number of keys is bounded (beyond it, failures fold into one row per action
// with no user or IP), so a spray from many addresses can't exhaust memory either.
import type { Logger } from 'pino';
import type { AuditEntry } from './audit-log.ts';

const MAX_KEYS = 10_000;

export class FailureSummary {
  readonly #append: (entry: AuditEntry) => Promise<void>;
  readonly #logger: Logger;
  #counts = new Map<string, { action: string; userId: string; ipAddress: string; count: number }>();
  #timer: NodeJS.Timeout | undefined;
  #flushing: Promise<void> = Promise.resolve();

  constructor(append: (entry: AuditEntry) => Promise<void>, logger: Logger, windowMs: number) {
    this.#append = append;
    this.#logger = logger;
    this.#timer = setInterval(() => void this.flush(), windowMs);
    this.#timer.unref();
  }

  note(action: string, userId: string | undefined, ipAddress: string): void {
    let key = JSON.stringify([action, userId ?? '', ipAddress]);
    let entry = this.#counts.get(key);
    if (!entry && this.#counts.size >= MAX_KEYS) {
      key = JSON.stringify([action, '', '']);
      entry = this.#counts.get(key);
      userId = '';
      ipAddress = '';
    }
    if (entry) entry.count += 1;
    else this.#counts.set(key, { action, userId: userId ?? '', ipAddress, count: 1 });
  }

  /** Writes one row per key counted since the last flush. Flushes run one after another. */
  flush(): Promise<void> {
    const batch = this.#counts;
    this.#counts = new Map();
    this.#flushing = this.#flushing.then(async () => {
      for (const entry of batch.values()) {
        try {
          await this.#append({
            action: entry.action,
            outcome: 'denied',
            ...(entry.userId && { userId: entry.userId }),
            ipAddress: entry.ipAddress,
            resourceId: `count=${entry.count}`,
          });
        } catch (error) {
          this.#logger.error(
            { action: entry.action, count: entry.count, errorType: (error as Error).name },
            'audit append of a failure summary failed',
          );
        }
      }
    });
    return this.#flushing;
  }

  /** Stops the timer and writes what is counted. */
  async close(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    await this.flush();
  }
}
