// Assembles a control plane from resolved settings: catalog (migrated), first admin, internal CA, TLS
// material, the admin API behind the auth interceptor, and the server. Tests and the CLI call
// startControlPlane in-process; main.ts only loads the config and calls it.
import type { ConnectRouter } from '@connectrpc/connect';
import { type CertificateAuthority, createLogger, type Keyring, type TlsMaterial } from '@sluice/crypto';
import type pg from 'pg';
import type { DestinationStream, Logger } from 'pino';
import { Counter, collectDefaultMetrics, Registry } from 'prom-client';
import { adminRoutes } from './api/routes.ts';
import type { ServiceDeps } from './api/service-deps.ts';
import { type AuditEntry, appendAudit } from './audit/audit-log.ts';
import { FailureSummary } from './audit/failure-summary.ts';
import { ROLE_RANK } from './auth/access-policy.ts';
import { authenticate, createAuthInterceptor } from './auth/auth-interceptor.ts';
import { createLoginGuard, DEFAULT_LOGIN_LIMITS } from './auth/login-guard.ts';
import { createFirstAdmin } from './auth/users.ts';
import { createWorkerSerials, keepWorkerSerialsFresh, type WorkerSerials } from './auth/worker-serials.ts';
import { openCatalog } from './catalog/catalog.ts';
import { bindLegacyDatasourcePasswords } from './catalog/datasource-secrets.ts';
import { ensureInternalCa } from './catalog/internal-ca.ts';
import type { ControlPlaneConfig } from './config.ts';
import { ensureDevCertificates } from './dev-certificates.ts';
import { type MetricsServer, startMetricsServer } from './metrics-server.ts';
import { type RunningServer, startServer } from './server.ts';

export interface StartOptions {
  /** Where log lines go (default stdout); tests capture them here. */
  logDestination?: DestinationStream;
  /** More services on the same port (the worker service), registered after the admin API. */
  extraRoutes?: (router: ConnectRouter, controlPlane: ControlPlaneCore) => void;
}

/** What other parts of the control plane (the worker service) build on. */
export interface ControlPlaneCore {
  pool: pg.Pool;
  keyring: Keyring;
  internalCa: CertificateAuthority;
  config: ControlPlaneConfig;
  logger: Logger;
  audit(entry: AuditEntry): Promise<void>;
  shutdownSignal: AbortSignal;
  /** Superseded and revoked worker certificates, refused right after the TLS handshake; kept current here. */
  workerSerials?: WorkerSerials;
}

export interface ControlPlane extends ControlPlaneCore {
  host: string;
  port: number;
  /** https://host:port, for clients. */
  url: string;
  /** The CA clients should trust for this server's certificate. */
  trustedCaPem: string;
  /** Serves a new certificate to new connections (full TLS policy repeated). */
  rotateTls(material: { certPem: string; keyPem: string }): void;
  /** Graceful: new calls refused, in-flight calls finish, then the catalog closes. */
  stop(): Promise<void>;
  /** The port of the unauthenticated metrics listener (SLUICE_METRICS_LISTEN), when it is on. */
  metricsPort: number | undefined;
  /** Writes the failed-login summary rows counted so far now, not at the end of the window (for tests). */
  flushFailureSummary(): Promise<void>;
}

export async function startControlPlane(
  config: ControlPlaneConfig,
  options: StartOptions = {},
): Promise<ControlPlane> {
  const logger = createLogger('control-plane', {
    level: config.logLevel,
    ...(options.logDestination && { destination: options.logDestination }),
  });
  const catalog = await openCatalog(config.catalog, logger);
  let server: RunningServer | undefined;
  let metricsServer: MetricsServer | undefined;
  try {
    const pool = catalog.pool;
    const keyring = config.keyring;
    if (config.firstAdmin) await ensureFirstAdmin(pool, config.firstAdmin, logger);
    const internalCa = await ensureInternalCa(pool, keyring, config.trustDomain);
    const bound = await bindLegacyDatasourcePasswords(pool, keyring);
    if (bound > 0) logger.info({ count: bound }, 'datasource passwords bound to their connection targets');
    const served: TlsMaterial = config.tls
      ? { certPem: config.tls.certPem, keyPem: config.tls.keyPem }
      : await ensureDevCertificates(config.dataDir, internalCa, config.listen.host);
    const trustedCaPem = config.tls ? (config.tls.caPem ?? '') : internalCa.certPem;

    const shutdown = new AbortController();
    let stoppedResolve: () => void = () => undefined;
    const stopped = new Promise<void>((resolve) => {
      stoppedResolve = resolve;
    });
    const audit = async (entry: AuditEntry) => {
      await appendAudit(pool, entry);
    };
    const workerSerials = createWorkerSerials(config.trustDomain);
    await keepWorkerSerialsFresh(workerSerials, pool, logger, shutdown.signal);
    const core: ControlPlaneCore = {
      pool,
      keyring,
      internalCa,
      config,
      logger,
      audit,
      shutdownSignal: shutdown.signal,
      workerSerials,
    };
    const deps: ServiceDeps = {
      pool,
      keyring,
      jwtSecret: config.jwtSecret,
      accessTokenTtlMs: config.accessTokenTtlMs,
      refreshTokenTtlMs: config.refreshTokenTtlMs,
      ...(config.sessionTtlMs !== undefined && { sessionTtlMs: config.sessionTtlMs }),
      logger,
      shutdownSignal: shutdown.signal,
      ...(config.datasourceHosts && { datasourceHosts: config.datasourceHosts }),
      audit,
      workerSerials,
    };
    const registry = new Registry();
    collectDefaultMetrics({ register: registry, prefix: 'sluice_' });
    const loginLimits = config.login ?? DEFAULT_LOGIN_LIMITS;
    const failures = new FailureSummary(audit, logger, loginLimits.auditWindowMs);
    const unauthenticatedCalls = new Counter({
      name: 'sluice_unauthenticated_calls_total',
      help: 'Calls refused for want of a valid access token (counted here, not audited one by one)',
      labelNames: ['method'] as const,
      registers: [registry],
    });
    // Client certificates are verified against the internal CA only: it alone issues worker identities.
    const tlsFor = (material: { certPem: string; keyPem: string }): TlsMaterial => ({
      certPem: material.certPem,
      keyPem: material.keyPem,
      caPem: internalCa.certPem,
    });
    const extra = options.extraRoutes;
    server = await startServer({
      host: config.listen.host,
      port: config.listen.port,
      tls: tlsFor(served),
      routes: adminRoutes(
        deps,
        { serving: () => !shutdown.signal.aborted, stopped },
        extra && ((router) => extra(router, core)),
      ),
      interceptors: [
        createAuthInterceptor({
          pool,
          jwtSecret: config.jwtSecret,
          logger,
          audit,
          summarise: (action, userId, ipAddress) => failures.note(action, userId, ipAddress),
          onUnauthenticated: (method) => unauthenticatedCalls.inc({ method }),
        }),
        createLoginGuard({ pool, limits: loginLimits, logger, audit }),
      ],
      registry,
      logger,
      refuseClientCertificate: (certificate) => workerSerials.refusal(certificate),
      async authorizeMetrics(authorization) {
        try {
          const caller = await authenticate({ pool, jwtSecret: config.jwtSecret }, authorization ?? null);
          return ROLE_RANK[caller.role] >= ROLE_RANK.operator ? 'ok' : 'forbidden';
        } catch {
          return 'unauthenticated';
        }
      },
    });
    const running = server;
    if (config.metricsListen) {
      metricsServer = await startMetricsServer(
        config.metricsListen,
        registry,
        () => !shutdown.signal.aborted,
      );
      logger.info({ host: metricsServer.host, port: metricsServer.port }, 'metrics listening (plain HTTP)');
    }
    const metrics = metricsServer;
    const host = running.host.includes(':') ? `[${running.host}]` : running.host;
    return {
      ...core,
      host: running.host,
      port: running.port,
      url: `https://${host}:${running.port}`,
      trustedCaPem,
      metricsPort: metrics?.port,
      rotateTls: (material) => running.rotateTls(tlsFor(material)),
      flushFailureSummary: () => failures.flush(),
      async stop() {
        if (!shutdown.signal.aborted) {
          shutdown.abort();
          stoppedResolve();
        }
        await running.shutdown();
        await metrics?.close();
        await failures.close();
        await catalog.close();
      },
    };
  } catch (error) {
    await metricsServer?.close();
    await server?.shutdown(0);
    await catalog.close();
    throw error;
  }
}

async function ensureFirstAdmin(
  pool: pg.Pool,
  admin: { username: string; password: string },
  logger: Logger,
): Promise<void> {
  const existing = await pool.query("select 1 from users where role = 'admin' limit 1");
  if (existing.rowCount) return;
  const user = await createFirstAdmin(pool, admin).catch((error: unknown) => {
    // Another control plane starting at the same moment created it.
    if ((error as { rawMessage?: string }).rawMessage?.startsWith('an admin already exists'))
      return undefined;
    throw error;
  });
  if (user) logger.info({ userId: user.id }, 'first admin created from SLUICE_ADMIN_USERNAME');
}
