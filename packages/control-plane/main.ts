// `node packages/control-plane/main.ts`: load the configuration, start, stop on SIGINT/SIGTERM. Wiring only.
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

const controlPlane = await startControlPlane(config);
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    controlPlane.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  });
}
