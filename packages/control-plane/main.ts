// `node packages/control-plane/main.ts`: load the configuration, start, stop on SIGINT/SIGTERM. Wiring only.
import { scrubSecrets } from '@sluice/crypto';
import { workerRoutes } from './api/worker-service.ts';
import { ConfigError, loadConfig } from './config.ts';
import { startControlPlane } from './control-plane.ts';

let config: ReturnType<typeof loadConfig>;
try {
  config = loadConfig();
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
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    controlPlane.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  });
}
