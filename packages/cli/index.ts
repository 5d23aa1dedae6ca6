// @sluice/cli: the `sluice` command. main.ts runs it; tests walk the command table for help coverage.
export { CliError, EXIT, EXIT_CODE_HELP } from './cli-error.ts';
export { allCommands, type CommandSpec, helpText } from './command-table.ts';
export { runCli, sluiceCommand } from './sluice-command.ts';
