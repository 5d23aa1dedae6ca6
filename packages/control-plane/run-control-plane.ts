// The control plane as a program: load the configuration from the environment, start with the worker
// service on the same port, stop gracefully on SIGINT/SIGTERM/SIGHUP. `main.ts` and `sluice control-plane`
// both call this, so the wiring lives in one place.
import { scrubSecrets } from '@sluice/crypto';
import { workerRoutes } from './api/worker-service.ts';
import { ConfigError, loadConfig } from './config.ts';
import { type ControlPlane, startControlPlane } from './control-plane.ts';

/** Runs until a signal stops it; exits the process with 0 (stopped), 1 (failed) or 2 (bad configuration). */
export async function runControlPlane(env: NodeJS.ProcessEnv = process.env): Promise<ControlPlane> {
  let config: ReturnType<typeof loadConfig>;
  try {
    config = loadConfig(env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    console.error(`sluice control plane: invalid configuration: ${error.message}`);
    process.exit(2);
  }
  const controlPlane = await startControlPlane(config, {
    extraRoutes: workerRoutes({
      heartbeatIntervalMs: config.heartbeatIntervalMs,
      certificateTtlSeconds: Math.round(config.workerCertificateTtlMs / 1000),
    }),
  }).catch((error: unknown) => {
    // A start-up failure may come from the catalog driver; its text is scrubbed of connection settings.
    console.error(
      `sluice control plane: failed to start: ${scrubSecrets(String((error as Error)?.message ?? error))}`,
    );
    process.exit(1);
  });
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      controlPlane.stop().then(
        () => process.exit(0),
        () => process.exit(1),
      );
    });
  }
  return controlPlane;
}
