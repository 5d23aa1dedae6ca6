// Where a job resumes from, and the bookkeeping that moves it. The ordering rule lives here: the durable
// LSN advances only to the end of a commit whose every change the sink has made durable, the checkpoint is
// saved, and only then is the LSN acknowledged to PostgreSQL.
import type { Lsn, TableRef } from '../change-event.ts';
import type { SnapshotCheckpointStore, SnapshotRange, SnapshotState } from '../source/postgres/snapshot.ts';
import { tableKey } from './transforms.ts';

export interface Checkpoint {
  /** The slot's consistent point: where streaming starts after the snapshot. */
  consistentPoint: Lsn;
  /** Everything up to here is durable in the sink and may be (or was) acknowledged. */
  durableLsn: Lsn;
  planned: SnapshotRange[];
  completed: SnapshotRange[];
  snapshotComplete: boolean;
  /**
   * Tables to copy again before streaming goes on: a column was added that PostgreSQL filled without WAL
   * and StarRocks can't default. Saved before the ALTER, cleared once the copy is durable.
   */
  resync?: TableRef[];
}

/**
 * Saves checkpoints somewhere that survives the worker (the control plane, fenced by the lease epoch).
 * `save` resolves only once the checkpoint is stored; it must never go backwards in `durableLsn`.
 */
export interface CheckpointStore {
  save(checkpoint: Checkpoint): Promise<void>;
}

export function emptyCheckpoint(): Checkpoint {
  return { consistentPoint: 0n, durableLsn: 0n, planned: [], completed: [], snapshotComplete: false };
}

/** The checkpoint of one run: copies are saved, so callers never share the live arrays. */
export class CheckpointTracker {
  readonly #store: CheckpointStore;
  #current: Checkpoint;
  #saving: Promise<void> = Promise.resolve();

  constructor(store: CheckpointStore, initial: Checkpoint) {
    this.#store = store;
    this.#current = clone(initial);
  }

  get current(): Readonly<Checkpoint> {
    return this.#current;
  }

  /** Replaces the whole checkpoint (a new slot: earlier state belongs to another slot) and saves it. */
  reset(next: Checkpoint): Promise<void> {
    this.#current = clone(next);
    return this.#save();
  }

  /** Records that everything up to `lsn` is durable in the sink and saves; false when nothing moved. */
  async advance(lsn: Lsn): Promise<boolean> {
    if (lsn <= this.#current.durableLsn) return false;
    this.#current.durableLsn = lsn;
    await this.#save();
    return true;
  }

  snapshotComplete(): Promise<void> {
    this.#current.snapshotComplete = true;
    return this.#save();
  }

  /** Records (and saves) that `table` must be copied again before streaming goes on. */
  requireResync(table: TableRef): Promise<void> {
    const pending = this.#current.resync ?? [];
    if (!pending.some((entry) => tableKey(entry) === tableKey(table))) {
      this.#current.resync = [...pending, { schema: table.schema, name: table.name }];
    }
    return this.#save();
  }

  /** Records (and saves) that `table`'s copy is durable. */
  resyncDone(table: TableRef): Promise<void> {
    this.#current.resync = (this.#current.resync ?? []).filter(
      (entry) => tableKey(entry) !== tableKey(table),
    );
    return this.#save();
  }

  /** The snapshot's view of this checkpoint (planned and completed ranges). */
  snapshotStore(): SnapshotCheckpointStore {
    return {
      load: async (): Promise<SnapshotState | undefined> =>
        this.#current.planned.length > 0
          ? { planned: [...this.#current.planned], completed: [...this.#current.completed] }
          : undefined,
      savePlan: (planned) => {
        this.#current.planned = [...planned];
        this.#current.completed = [];
        return this.#save();
      },
      completeRange: (range) => {
        const id = rangeKey(range);
        if (!this.#current.completed.some((done) => rangeKey(done) === id))
          this.#current.completed.push(range);
        return this.#save();
      },
    };
  }

  /** Saves in call order; a save never overtakes an earlier one. */
  #save(): Promise<void> {
    const snapshot = clone(this.#current);
    const next = this.#saving.then(() => this.#store.save(snapshot));
    this.#saving = next.catch(() => undefined);
    return next;
  }
}

function rangeKey(range: SnapshotRange): string {
  return `${tableKey(range.table)}\0${range.index}`;
}

function clone(checkpoint: Checkpoint): Checkpoint {
  return {
    ...checkpoint,
    planned: [...checkpoint.planned],
    completed: [...checkpoint.completed],
    resync: [...(checkpoint.resync ?? [])],
  };
}
