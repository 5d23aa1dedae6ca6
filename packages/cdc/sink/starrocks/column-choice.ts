// Per-column choices a job makes (CLI `--column-as`, `--on-unrepresentable`; API `JobOptions.column_options`):
// which StarRocks type a column lands in, and what happens to a value that type can't hold exactly.
import type { TableRef } from '../../change-event.ts';

/** `default`: the type map's choice (README, "Types"). `text`: VARCHAR holding PostgreSQL's own text. */
export type ColumnTarget = 'default' | 'text';

/**
 * `fail` (the default): the job stops naming table, column, key and value. `null`: load NULL and count it.
 * `clamp`: load the nearest value the type holds and count it (fails where there is none, e.g. NaN).
 */
export type UnrepresentablePolicy = 'fail' | 'null' | 'clamp';

export interface ColumnChoice {
  table: TableRef;
  column: string;
  target?: ColumnTarget;
  onUnrepresentable?: UnrepresentablePolicy;
}
