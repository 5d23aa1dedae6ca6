// A worker process whose jobs run the placeholder runner (moves no rows): for tests of the worker protocol
// alone, whose jobs point at datasources that don't exist.
import { createPlaceholderRunner, runWorker } from '@sluice/worker';

process.exitCode = await runWorker(process.env, { runner: () => createPlaceholderRunner() });
