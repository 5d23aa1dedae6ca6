// Drops a deleted job's replication slot and publication, so the source stops retaining WAL for it. The
// names are derived here from the job id, never taken from the request: the control plane can only ask to
// clean up after a job, not to drop an arbitrary slot.
import { classifyError, PostgresSource, replicationName } from '@sluice/cdc';
import type { DatasourceSecrets, ReplicationCleanup } from '@sluice/proto';
import { sourceConnection } from './datasource-options.ts';

export async function dropReplication(
  cleanup: ReplicationCleanup,
  secrets: DatasourceSecrets,
): Promise<void> {
  const name = replicationName(cleanup.jobId);
  if (cleanup.slotName !== name || cleanup.publicationName !== name) {
    throw new Error(`cleanup for job ${cleanup.jobId} names ${cleanup.slotName}, expected ${name}`);
  }
  if (!cleanup.source) throw new Error(`the cleanup for job ${cleanup.jobId} names no source`);
  const source = new PostgresSource({
    connection: sourceConnection(cleanup.source, secrets),
    job: cleanup.jobId,
    tables: [],
  });
  try {
    await source.drop();
  } catch (error) {
    throw new Error(classifyError(error).message);
  }
}
