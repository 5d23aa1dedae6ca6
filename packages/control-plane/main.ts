// `node packages/control-plane/main.ts`: wiring only.
import { runControlPlane } from './run-control-plane.ts';

await runControlPlane(process.env);
