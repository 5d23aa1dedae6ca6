// `sluice worker` runs a worker agent (the worker package's runWorker decides the job runner);
// `sluice worker list|drain|revoke` manage registered workers through the API.

import { AgentState, WorkerAdminService, WorkerSchema, WorkerState } from '@sluice/proto';
import { connect } from '../client.ts';
import { type CommandSpec, type FlagSpec, stringFlag } from '../command-table.ts';
import { findWorker } from '../lookup.ts';
import { enumWord, messageJson, printJson, println, table, when } from '../output.ts';

/** `sluice worker` flags; each mirrors the environment variable of the worker's configuration. */
export const WORKER_FLAGS: Record<string, FlagSpec> = {
  'bootstrap-token-file': {
    type: 'string',
    value: 'FILE',
    env: 'SLUICE_BOOTSTRAP_TOKEN_FILE',
    description: 'single-use registration token (needed until the worker has an identity in --state-dir)',
  },
  'max-jobs': {
    type: 'string',
    value: 'N',
    env: 'SLUICE_MAX_JOBS',
    default: '4',
    description: 'jobs run at once',
  },
  labels: {
    type: 'string',
    value: 'K=V,…',
    env: 'SLUICE_WORKER_LABELS',
    description: 'labels of this worker',
  },
  'metrics-listen': {
    type: 'string',
    value: 'HOST:PORT',
    env: 'SLUICE_METRICS_LISTEN',
    description: 'serve /metrics and /healthz here',
  },
  'log-level': {
    type: 'string',
    value: 'LEVEL',
    env: 'SLUICE_LOG_LEVEL',
    default: 'info',
    description: 'log level',
  },
};

const GLOBAL_TO_ENV: Record<string, string> = {
  'control-plane': 'SLUICE_CONTROL_PLANE',
  'ca-file': 'SLUICE_CA_FILE',
  'state-dir': 'SLUICE_STATE_DIR',
};

const WORKER_ARG = [{ name: 'worker', description: 'id, id prefix or host name' }];

export const workerCommand: CommandSpec = {
  name: 'worker',
  summary: 'Run a worker agent, or list, drain and revoke workers',
  description:
    'Without a subcommand, runs a worker: it registers with --bootstrap-token-file (or reuses the identity\n' +
    'in --state-dir), pulls jobs and moves rows. --control-plane and --ca-file name the control plane;\n' +
    'SIGTERM or SIGINT drains it (in-flight batches finish, leases are handed back).',
  flags: WORKER_FLAGS,
  examples: [
    'sluice worker --control-plane https://cp:8443 --ca-file ca.crt --bootstrap-token-file w1.token --state-dir /var/lib/sluice/state',
  ],
  async run(context) {
    const env: NodeJS.ProcessEnv = { ...context.env };
    for (const [flag, name] of Object.entries(GLOBAL_TO_ENV)) {
      const value = stringFlag(context.flags, flag);
      if (value !== undefined) env[name] = value;
    }
    for (const [flag, spec] of Object.entries(WORKER_FLAGS)) {
      const value = stringFlag(context.flags, flag);
      if (value !== undefined && spec.env) env[spec.env] = value;
    }
    // Loaded here: only this command runs the agent and its pipeline.
    const { runWorker } = await import('@sluice/worker');
    return runWorker(env);
  },
  subcommands: [
    {
      name: 'list',
      summary: 'List workers, newest first',
      flags: { all: { type: 'boolean', description: 'include revoked workers' } },
      async run(context) {
        const connection = await connect(context);
        const { workers } = await connection
          .client(WorkerAdminService)
          .listWorkers({ includeRevoked: context.flags.all === true });
        if (context.json) printJson(context, { workers: workers.map((w) => messageJson(WorkerSchema, w)) });
        else if (workers.length === 0) println(context, 'no workers');
        else
          println(
            context,
            table([
              ['ID', 'HOST', 'STATE', 'AGENT', 'JOBS', 'LAST HEARTBEAT', 'CERT EXPIRES'],
              ...workers.map((w) => [
                w.id,
                w.hostname,
                enumWord(WorkerState, w.state),
                enumWord(AgentState, w.agentState),
                String(w.jobIds.length),
                when(w.lastHeartbeatAt),
                when(w.certificateExpiresAt),
              ]),
            ]),
          );
        return 0;
      },
    },
    {
      name: 'drain',
      summary: 'Tell a worker to finish its jobs and take no more (admin)',
      args: WORKER_ARG,
      async run(context) {
        const connection = await connect(context);
        const worker = await findWorker(connection, context.args[0]!);
        const answer = await connection.client(WorkerAdminService).drainWorker({ id: worker.id });
        if (context.json) printJson(context, messageJson(WorkerSchema, answer.worker!));
        else println(context, `worker ${worker.id} draining`);
        return 0;
      },
    },
    {
      name: 'revoke',
      summary: 'Revoke a worker: its certificate is refused from the next call on (admin)',
      args: WORKER_ARG,
      async run(context) {
        const connection = await connect(context);
        const worker = await findWorker(connection, context.args[0]!);
        const answer = await connection.client(WorkerAdminService).revokeWorker({ id: worker.id });
        if (context.json) printJson(context, messageJson(WorkerSchema, answer.worker!));
        else println(context, `worker ${worker.id} revoked`);
        return 0;
      },
    },
  ],
};
