// The replication engine: PostgreSQL source → change events → StarRocks sink. Knows nothing of the
// control plane.
export * from './change-event.ts';
export * from './pipeline/index.ts';
export * from './sink/starrocks/index.ts';
export * from './source/postgres/index.ts';
