// Commands take a job, datasource or worker by name or by id; the API takes ids. One listing call turns a
// name into an id, and a miss is a not-found exit (5) before any change is attempted.
import {
  type Datasource,
  DatasourceService,
  type Job,
  JobService,
  type Worker,
  WorkerAdminService,
} from '@sluice/proto';
import { notFoundError } from './cli-error.ts';
import type { Connection } from './client.ts';

export async function findDatasource(connection: Connection, ref: string): Promise<Datasource> {
  const { datasources } = await connection.client(DatasourceService).listDatasources({});
  const found =
    datasources.find((d) => d.id === ref.toLowerCase()) ?? datasources.find((d) => d.name === ref);
  if (!found) throw notFoundError(`datasource ${JSON.stringify(ref)} not found`);
  return found;
}

export async function findJob(connection: Connection, ref: string): Promise<Job> {
  const { jobs } = await connection.client(JobService).listJobs({});
  const found = jobs.find((j) => j.id === ref.toLowerCase()) ?? jobs.find((j) => j.name === ref);
  if (!found) throw notFoundError(`job ${JSON.stringify(ref)} not found`);
  return found;
}

/** By id, id prefix (as `worker list` shows it) or host name when that is unambiguous. */
export async function findWorker(connection: Connection, ref: string): Promise<Worker> {
  const { workers } = await connection.client(WorkerAdminService).listWorkers({ includeRevoked: true });
  const exact = workers.find((w) => w.id === ref.toLowerCase());
  if (exact) return exact;
  const matches = workers.filter((w) => w.id.startsWith(ref.toLowerCase()) || w.hostname === ref);
  if (matches.length === 1) return matches[0]!;
  if (matches.length > 1) throw notFoundError(`worker ${JSON.stringify(ref)} is ambiguous; give its id`);
  throw notFoundError(`worker ${JSON.stringify(ref)} not found`);
}
