// Test support: an in-memory replica that applies change events the way the sink must (upsert by key,
// unchanged TOAST keeps the old value, delete by key, truncate empties), and helpers to drive a stream.
import type { ChangeEvent, ColumnValue, Row, TableRef } from '../../../change-event.ts';
import { UNCHANGED_TOAST } from '../../../change-event.ts';
import type { ConnectionOptions } from '../connection.ts';
import type { ReplicationStream } from '../replication-stream.ts';

export class MemoryTable {
  readonly table: TableRef;
  readonly rows = new Map<string, Row>();
  readonly #key: string[];

  constructor(table: TableRef, key: string[]) {
    this.table = table;
    this.#key = key;
  }

  keyOf(row: Row): string {
    return JSON.stringify(this.#key.map((name) => row[name] as ColumnValue));
  }

  upsert(row: Row): void {
    const id = this.keyOf(row);
    const previous = this.rows.get(id);
    const next: Row = {};
    for (const [name, value] of Object.entries(row)) {
      if (value === UNCHANGED_TOAST) {
        if (!previous || !(name in previous))
          throw new Error(`unchanged TOAST for ${name} without a base row`);
        next[name] = previous[name] as ColumnValue;
      } else next[name] = value;
    }
    this.rows.set(id, next);
  }

  apply(event: ChangeEvent): void {
    switch (event.kind) {
      case 'insert':
        if (sameTable(event.table, this.table)) this.upsert(event.row);
        return;
      case 'update':
        if (!sameTable(event.table, this.table)) return;
        if (event.oldKey) {
          const oldId = this.keyOf(event.oldKey);
          if (oldId !== this.keyOf(event.row)) {
            const previous = this.rows.get(oldId);
            this.rows.delete(oldId);
            if (previous) this.rows.set(this.keyOf(event.row), previous);
          }
        }
        this.upsert(event.row);
        return;
      case 'delete':
        if (sameTable(event.table, this.table)) this.rows.delete(this.keyOf(event.key));
        return;
      case 'truncate':
        if (event.tables.some((table) => sameTable(table, this.table))) this.rows.clear();
        return;
      default:
        return;
    }
  }

  /** Rows sorted by key, for comparison. */
  sorted(): Row[] {
    return [...this.rows.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, row]) => row);
  }
}

function sameTable(a: TableRef, b: TableRef): boolean {
  return a.schema === b.schema && a.name === b.name;
}

/**
 * Reads batches until `stop` returns true for an event, handing every event to `each` (which may
 * acknowledge). Returns every event seen.
 */
export async function readUntil(
  stream: ReplicationStream,
  stop: (event: ChangeEvent) => boolean,
  each: (event: ChangeEvent) => void = () => undefined,
): Promise<ChangeEvent[]> {
  const seen: ChangeEvent[] = [];
  const consume = (batch: ChangeEvent[]): boolean => {
    for (let index = 0; index < batch.length; index++) {
      const event = batch[index]!;
      seen.push(event);
      each(event);
      if (stop(event)) {
        leftovers.set(stream, batch.slice(index + 1));
        return true;
      }
    }
    return false;
  };
  const left = leftovers.get(stream);
  leftovers.delete(stream);
  if (left && consume(left)) return seen;
  for await (const batch of stream) if (consume(batch)) return seen;
  throw new Error('the stream ended before the awaited event');
}

const leftovers = new WeakMap<ReplicationStream, ChangeEvent[]>();

/** Connection options for a test database on a harness server, verify-full against the test CA. */
export function testConnection(
  server: { host: string; port: number; user: string; password: string; caPem?: string },
  database: string,
): ConnectionOptions {
  return {
    host: server.host,
    port: server.port,
    database,
    user: server.user,
    password: server.password,
    ...(server.caPem
      ? { sslMode: 'verify-full' as const, sslRootCert: server.caPem }
      : { sslMode: 'disable' as const }),
  };
}

/** Reads a stream in the background into `events`, calling `each` per event, until the stream closes. */
export function collect(
  stream: ReplicationStream,
  each: (event: ChangeEvent) => void = () => undefined,
): { events: ChangeEvent[]; done: Promise<void> } {
  const events: ChangeEvent[] = [];
  const done = (async () => {
    for await (const batch of stream) {
      for (const event of batch) {
        events.push(event);
        each(event);
      }
    }
  })();
  done.catch((error: unknown) => {
    // Surfaces in the waiting test as a thrown marker-less event.
    events.push({
      kind: 'message',
      lsn: 0n,
      transactional: false,
      prefix: 'stream-error',
      content: Buffer.from(String(error)),
    });
  });
  return { events, done };
}
