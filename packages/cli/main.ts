// `node packages/cli/main.ts …` (or `npx sluice …`): the `sluice` command. Wiring only.
import { runCli } from './sluice-command.ts';

process.exitCode = await runCli(process.argv.slice(2));
