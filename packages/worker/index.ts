// The worker agent: registration, leases, sealed credentials, and the job-runner contract.
export { backoff, WorkerAgent, type WorkerAgentOptions } from './agent.ts';
export { type AgentState, AgentStateMachine } from './agent-state.ts';
export { type ConnectionTester, type ConnectionTestResult, testConnection } from './connection-tester.ts';
export {
  type ControlClient,
  type ControlClientOptions,
  createControlClient,
  grpcCode,
} from './control-client.ts';
export {
  type JobCredentials,
  openDatasourceSecrets,
  openJobCredentials,
  receivedNow,
} from './credentials.ts';
export {
  type JobContext,
  type JobRun,
  type JobRunner,
  type ProgressReport,
  StaleLeaseError,
} from './job-runner.ts';
export { type RunWorkerOptions, runWorker } from './main.ts';
export { type MetricsServer, startMetricsServer } from './metrics-server.ts';
export { createPipelineRunner, type PipelineRunnerOptions } from './pipeline-runner.ts';
export { ConfigError, loadWorkerConfig, parseControlPlane, type WorkerConfig } from './worker-config.ts';
export {
  fileIdentityStore,
  type IdentityStore,
  identityFromRegistration,
  memoryIdentityStore,
  type WorkerIdentity,
} from './worker-identity.ts';
