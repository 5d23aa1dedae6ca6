// The StarRocks sink: Primary Key tables over the MySQL port, rows over Stream Load.

export type { ColumnChoice, ColumnTarget, UnrepresentablePolicy } from './column-choice.ts';
export type { StarRocksDatasource, StarRocksTlsOptions } from './connection.ts';
export type { WriteOp } from './encoding.ts';
export { type LabelParts, streamLoadLabel } from './label.ts';
export type { TableMapping } from './schema.ts';
export { isStarRocksError, StarRocksError, type StarRocksErrorKind } from './starrocks-error.ts';
export {
  createStarRocksSink,
  defaultTargetTable,
  type SchemaHooks,
  type StarRocksSink,
  type StarRocksSinkOptions,
  type WriteResult,
} from './starrocks-sink.ts';
export type { RetryOptions } from './stream-load-client.ts';
export { type MappedType, mapColumnType, type ValueRule } from './type-map.ts';
export { toWriteOps } from './write-ops.ts';
