// The replication pipeline: source → transforms → batcher → sink → checkpoint → acknowledge.

export {
  Batcher,
  type BatcherLimits,
  defaultBatcherLimits,
  type RowEvent,
  type TableBatch,
} from './batcher.ts';
export { type Checkpoint, type CheckpointStore, emptyCheckpoint } from './checkpoint.ts';
export {
  type ClassifiedError,
  classifyError,
  type ErrorKind,
  RetryableError,
  retryDelay,
} from './error-kind.ts';
export {
  Pipeline,
  PipelineError,
  type PipelineOptions,
  type PipelinePhase,
  type TablePhase,
  type TableStats,
} from './pipeline.ts';
export { type ColumnRef, TransformError, type TransformOptions, Transforms } from './transforms.ts';
