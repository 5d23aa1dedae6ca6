// Every service the control plane's port answers, wired to its implementation.
import type { ConnectRouter } from '@connectrpc/connect';
import {
  AuditService,
  AuthService,
  BootstrapTokenService,
  DatasourceService,
  health,
  JobService,
  KeyService,
  UserService,
  WorkerAdminService,
} from '@sluice/proto';
import { createAuditService } from './audit-service.ts';
import { createAuthService } from './auth-service.ts';
import { createBootstrapTokenService } from './bootstrap-token-service.ts';
import { createDatasourceService } from './datasource-service.ts';
import { createHealthService, type HealthState } from './health-service.ts';
import { createJobService } from './job-service.ts';
import { createKeyService } from './key-service.ts';
import type { ServiceDeps } from './service-deps.ts';
import { createUserService } from './user-service.ts';
import { createWorkerAdminService } from './worker-admin-service.ts';

export const ADMIN_SERVICES = [
  AuthService,
  UserService,
  DatasourceService,
  JobService,
  WorkerAdminService,
  BootstrapTokenService,
  AuditService,
  KeyService,
] as const;

export function adminRoutes(
  deps: ServiceDeps,
  healthState: HealthState,
  extra?: (router: ConnectRouter) => void,
): (router: ConnectRouter) => void {
  return (router) => {
    router.service(AuthService, createAuthService(deps));
    router.service(UserService, createUserService(deps));
    router.service(DatasourceService, createDatasourceService(deps));
    router.service(JobService, createJobService(deps));
    router.service(WorkerAdminService, createWorkerAdminService(deps));
    router.service(BootstrapTokenService, createBootstrapTokenService(deps));
    router.service(AuditService, createAuditService(deps));
    router.service(KeyService, createKeyService(deps));
    router.service(
      health.Health,
      createHealthService(
        healthState,
        ADMIN_SERVICES.map((s) => s.typeName),
      ),
    );
    extra?.(router);
  };
}
