// @sluice/control-plane: start a control plane in-process (tests, the CLI), create the first admin, rotate
// encryption keys offline, and the pieces the worker service builds on.

export { BOOTSTRAP_TOKEN_PREFIX, bootstrapTokenHash } from './api/bootstrap-token-service.ts';
export { replicationNames } from './api/job-service.ts';
export { type AuditEntry, type AuditVerification, appendAudit, verifyAudit } from './audit/audit-log.ts';
export { ACCESS_POLICY, type MethodRule } from './auth/access-policy.ts';
export { createFirstAdmin } from './auth/users.ts';
export { type CallPeer, callerKey, peerKey } from './call-context.ts';
export { type Catalog, type CatalogSource, openCatalog } from './catalog/catalog.ts';
export { migrate } from './catalog/migrate.ts';
export {
  type RotationResult,
  rotateCatalogKeys,
  rotateEncryptionKeys,
} from './catalog/rotate-encryption-keys.ts';
export { decryptField, encryptField, SECRET_COLUMNS, type SecretColumn } from './catalog/secret-columns.ts';
export { ConfigError, type ControlPlaneConfig, loadConfig } from './config.ts';
export {
  type ControlPlane,
  type ControlPlaneCore,
  type StartOptions,
  startControlPlane,
} from './control-plane.ts';
export { devCertificatePaths } from './dev-certificates.ts';
export { runControlPlane } from './run-control-plane.ts';
