// `sluice worker`: wiring only.
import { createLogger } from '@sluice/crypto';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { WorkerAgent } from './agent.ts';
import { createConnectionTester } from './connection-tester.ts';
import type { JobRunner } from './job-runner.ts';
import { type MetricsServer, startMetricsServer } from './metrics-server.ts';
import { createPipelineRunner } from './pipeline-runner.ts';
import { ConfigError, loadWorkerConfig } from './worker-config.ts';
import { fileIdentityStore, memoryIdentityStore } from './worker-identity.ts';

export interface RunWorkerOptions {
  /** Runs each leased job (default: the replication pipeline). Tests of the protocol alone pass another. */
  runner?: (registry: Registry) => JobRunner;
}

export async function runWorker(
  env: NodeJS.ProcessEnv = process.env,
  options: RunWorkerOptions = {},
): Promise<number> {
  let config: ReturnType<typeof loadWorkerConfig>;
  try {
    config = loadWorkerConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(`sluice worker: ${error.message}`);
      return 2;
    }
    throw error;
  }
  const logger = createLogger('worker', { level: config.logLevel });
  const registry = new Registry();
  const runner = options.runner ?? ((metrics: Registry) => createPipelineRunner({ registry: metrics }));
  const agent = new WorkerAgent({
    controlPlane: config.controlPlane,
    caPem: config.caPem,
    ...(config.bootstrapToken && { bootstrapToken: config.bootstrapToken }),
    identityStore: config.stateDir ? fileIdentityStore(config.stateDir) : memoryIdentityStore(),
    runner: runner(registry),
    logger,
    maxJobs: config.maxJobs,
    labels: config.labels,
    // Connection tests never aim at Sluice itself.
    connectionTester: createConnectionTester({
      ownAddresses: [config.controlPlane, ...(config.metricsListen ? [config.metricsListen] : [])],
    }),
  });
  const onSignal = (signal: string) => void agent.drain(`received ${signal}`);
  process.once('SIGTERM', () => onSignal('SIGTERM'));
  process.once('SIGINT', () => onSignal('SIGINT'));
  let metrics: MetricsServer | undefined;
  if (config.metricsListen) {
    collectDefaultMetrics({ register: registry, prefix: 'sluice_worker_' });
    metrics = await startMetricsServer(config.metricsListen, registry, () => agent.state);
    logger.info({ port: metrics.port }, 'worker metrics listening');
  }
  try {
    await agent.start();
  } catch {
    logger.error(`worker could not start: ${agent.error?.message}`);
    await metrics?.close();
    return 1;
  }
  const final = await agent.done;
  await metrics?.close();
  return final === 'stopped' ? 0 : 1;
}

if (import.meta.main) process.exitCode = await runWorker();
