// Test infrastructure: real PostgreSQL servers, per-test databases, a test CA, and waiting for states.

export {
  type Canary,
  type CanaryHit,
  type CanaryScan,
  canaryForms,
  checkRunDirectory,
  plantCanary,
  scanRunDirectory,
} from './canary.ts';
export {
  CERT_AUTH_USER,
  connectionConfig,
  findSystemPostgres,
  type PostgresServer,
  type PostgresServerInfo,
  type PostgresServerOptions,
  startPostgres,
} from './postgres-server.ts';
export { type ServiceProcess, type ServiceProcessOptions, startServiceProcess } from './service-process.ts';
export {
  type EmulatedColumnInfo,
  type EmulatorFault,
  type LoadRecord,
  type RequestRecord,
  type StarRocksEmulator,
  type StarRocksEmulatorOptions,
  startStarRocksEmulator,
} from './starrocks-emulator/starrocks-emulator.ts';
export { createTestCa, type TestCa, type TestKeyPair } from './test-ca.ts';
export { createTestDatabase, sharedPostgres, type TestDatabase } from './test-database.ts';
export { type WaitForOptions, waitFor } from './wait-for.ts';
