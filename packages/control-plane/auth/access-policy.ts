// Who may call what: one table keyed by "<service type name>/<method>". A method missing from the table is
// refused (default deny), so a new RPC is unreachable until someone decides its role here.
import type { RoleName } from '../call-context.ts';

export type Access =
  /** No token: login, refresh, health. */
  | 'public'
  /** Any valid token, whatever the role. */
  | 'authenticated'
  /** The least role allowed. */
  | RoleName
  /** Worker RPCs: no JWT; the worker service checks the client certificate itself. */
  | 'worker';

export interface MethodRule {
  access: Access;
  /** Audit action written for every call, success or failure; absent for read-only calls. */
  audit?: string;
  /**
   * For public methods anyone can call: failures are not audited one row each but counted into a summary row
   * of this action per user and IP per window (audit/failure-summary.ts).
   */
  failures?: string;
}

export const ROLE_RANK: Readonly<Record<RoleName, number>> = { viewer: 1, operator: 2, admin: 3 };

const V1 = 'sluice.v1';

export const ACCESS_POLICY: Readonly<Record<string, MethodRule>> = {
  [`${V1}.AuthService/Login`]: { access: 'public', audit: 'auth.login', failures: 'login.failed' },
  [`${V1}.AuthService/Refresh`]: { access: 'public', audit: 'auth.refresh', failures: 'refresh.failed' },
  [`${V1}.AuthService/Logout`]: { access: 'authenticated', audit: 'auth.logout' },
  [`${V1}.AuthService/WhoAmI`]: { access: 'viewer' },

  [`${V1}.UserService/CreateUser`]: { access: 'admin', audit: 'user.create' },
  [`${V1}.UserService/ListUsers`]: { access: 'admin' },
  [`${V1}.UserService/UpdateUser`]: { access: 'admin', audit: 'user.update' },
  [`${V1}.UserService/DeleteUser`]: { access: 'admin', audit: 'user.delete' },

  [`${V1}.DatasourceService/CreateDatasource`]: { access: 'operator', audit: 'datasource.create' },
  [`${V1}.DatasourceService/GetDatasource`]: { access: 'viewer' },
  [`${V1}.DatasourceService/ListDatasources`]: { access: 'viewer' },
  [`${V1}.DatasourceService/UpdateDatasource`]: { access: 'operator', audit: 'datasource.update' },
  [`${V1}.DatasourceService/DeleteDatasource`]: { access: 'operator', audit: 'datasource.delete' },
  [`${V1}.DatasourceService/TestDatasource`]: { access: 'operator', audit: 'datasource.test' },

  [`${V1}.JobService/CreateJob`]: { access: 'operator', audit: 'job.create' },
  [`${V1}.JobService/GetJob`]: { access: 'viewer' },
  [`${V1}.JobService/ListJobs`]: { access: 'viewer' },
  [`${V1}.JobService/StartJob`]: { access: 'operator', audit: 'job.start' },
  [`${V1}.JobService/PauseJob`]: { access: 'operator', audit: 'job.pause' },
  [`${V1}.JobService/ResumeJob`]: { access: 'operator', audit: 'job.resume' },
  [`${V1}.JobService/StopJob`]: { access: 'operator', audit: 'job.stop' },
  [`${V1}.JobService/DeleteJob`]: { access: 'operator', audit: 'job.delete' },
  [`${V1}.JobService/GetJobStatus`]: { access: 'viewer' },
  [`${V1}.JobService/WatchJobStatus`]: { access: 'viewer' },

  [`${V1}.WorkerAdminService/ListWorkers`]: { access: 'viewer' },
  [`${V1}.WorkerAdminService/GetWorker`]: { access: 'viewer' },
  [`${V1}.WorkerAdminService/DrainWorker`]: { access: 'admin', audit: 'worker.drain' },
  [`${V1}.WorkerAdminService/RevokeWorker`]: { access: 'admin', audit: 'worker.revoke' },

  [`${V1}.BootstrapTokenService/CreateBootstrapToken`]: { access: 'admin', audit: 'bootstrap_token.create' },
  [`${V1}.BootstrapTokenService/ListBootstrapTokens`]: { access: 'admin' },
  [`${V1}.BootstrapTokenService/RevokeBootstrapToken`]: { access: 'admin', audit: 'bootstrap_token.revoke' },

  [`${V1}.AuditService/ListAuditEvents`]: { access: 'viewer' },
  [`${V1}.AuditService/VerifyAuditChain`]: { access: 'admin' },

  [`${V1}.KeyService/RotateEncryptionKeys`]: { access: 'admin', audit: 'keys.rotate' },

  // Worker RPCs authenticate by client certificate in the worker service; they audit themselves
  // (registrations and credential issues).
  [`${V1}.WorkerService/Register`]: { access: 'worker' },
  [`${V1}.WorkerService/Heartbeat`]: { access: 'worker' },
  [`${V1}.WorkerService/PullJob`]: { access: 'worker' },
  [`${V1}.WorkerService/BeginEnvelopeKeyRotation`]: { access: 'worker' },
  [`${V1}.WorkerService/RotateEnvelopeKey`]: { access: 'worker' },
  [`${V1}.WorkerService/FetchCredentials`]: { access: 'worker' },
  [`${V1}.WorkerService/ReportProgress`]: { access: 'worker' },
  [`${V1}.WorkerService/RenewCertificate`]: { access: 'worker' },
  [`${V1}.WorkerService/CompleteConnectionTest`]: { access: 'worker' },
  [`${V1}.WorkerService/CompleteReplicationCleanup`]: { access: 'worker' },

  'grpc.health.v1.Health/Check': { access: 'public' },
  'grpc.health.v1.Health/Watch': { access: 'public' },
};
