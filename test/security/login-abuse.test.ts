// Hostile logins against a real control plane process over TLS 1.3: a thousand bad passwords for one user,
// a spray across many user names from one address, anonymous calls to audited RPCs, and sessions that must
// end (logout, password reset, the absolute session lifetime). Source addresses other than 127.0.0.1 come
// from binding the client to other loopback addresses (127.0.0.0/8 is all local on Linux).

import https from 'node:https';
import { Code, ConnectError, createClient, type Interceptor } from '@connectrpc/connect';
import { createConnectTransport } from '@connectrpc/connect-node';
import { randomToken } from '@sluice/crypto';
import { AuditService, AuthService, BootstrapTokenService, Role, UserService } from '@sluice/proto';
import { createTestDatabase, plantCanary, type TestDatabase, waitFor } from '@sluice/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ADMIN,
  type ClusterSecrets,
  type ControlPlaneProcess,
  clusterSecrets,
  startControlPlaneProcess,
} from '../e2e/cluster.ts';

const LOCKOUT_SECONDS = 15;
const LIMITS = {
  SLUICE_LOGIN_MAX_FAILURES: '5',
  SLUICE_LOGIN_LOCKOUT: `${LOCKOUT_SECONDS}s`,
  SLUICE_LOGIN_RATE_PER_IP: '30',
  SLUICE_LOGIN_RATE_PER_USER: '20',
  SLUICE_LOGIN_AUDIT_WINDOW: '5s',
};

function transport(cp: ControlPlaneProcess, from = '127.0.0.1', token?: string) {
  const interceptors: Interceptor[] = token
    ? [
        (next) => (req) => {
          req.header.set('authorization', `Bearer ${token}`);
          return next(req);
        },
      ]
    : [];
  return createConnectTransport({
    baseUrl: cp.url,
    httpVersion: '2',
    // http2.connect hands its options to tls.connect, which binds the socket to `localAddress`.
    nodeOptions: {
      ca: cp.caPem,
      minVersion: 'TLSv1.3',
      maxVersion: 'TLSv1.3',
      ...({ localAddress: from } as object),
    },
    interceptors,
  });
}

async function refusal(promise: Promise<unknown>): Promise<ConnectError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error, 'the call should have been refused').toBeInstanceOf(ConnectError);
  return error as ConnectError;
}

function getMetrics(cp: ControlPlaneProcess, token?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.get(
      {
        host: '127.0.0.1',
        port: cp.port,
        path: '/metrics',
        ca: cp.caPem,
        servername: 'localhost',
        agent: false,
        headers: token ? { authorization: `Bearer ${token}` } : {},
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          body += chunk;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.once('error', reject);
  });
}

describe('login abuse and session ends, against a real control plane', () => {
  let db: TestDatabase;
  let secrets: ClusterSecrets;
  let cp: ControlPlaneProcess;
  let shortSessions: ControlPlaneProcess | undefined;
  let adminToken: string;
  const passwords = new Map<string, string>();

  const login = (username: string, from = '127.0.0.1', password = passwords.get(username)!) =>
    createClient(AuthService, transport(cp, from)).login({ username, password });
  const admin = <S extends Parameters<typeof createClient>[0]>(service: S) =>
    createClient(service, transport(cp, '127.0.0.1', adminToken));

  beforeAll(async () => {
    db = await createTestDatabase('login-abuse');
    secrets = await clusterSecrets();
    cp = await startControlPlaneProcess(db, secrets, { name: 'control plane', env: LIMITS });
    adminToken = (await login(ADMIN.username, '127.0.0.1', ADMIN.password)).accessToken;
    for (const username of ['victim', 'bystander', 'leaver', 'reset', 'sessioned']) {
      const password = plantCanary(`pw-${randomToken(16)}`, `login-abuse password of ${username}`);
      passwords.set(username, password);
      await admin(UserService).createUser({ username, password, role: Role.VIEWER });
    }
  }, 180_000);

  afterAll(async () => {
    await shortSessions?.process.stop();
    await cp?.process.stop();
    await db?.drop();
  }, 60_000);

  it('locks an account under 1,000 concurrent bad logins, keeps others answering, and audits a handful of rows', async () => {
    const victimId = (await admin(UserService).listUsers({})).users.find((u) => u.username === 'victim')!.id;
    const attacker = createClient(AuthService, transport(cp, '127.0.0.1'));
    const started = Date.now();
    const attack = Promise.all(
      Array.from({ length: 1000 }, (_, i) =>
        attacker.login({ username: 'victim', password: `guess-${i}` }).then(
          () => 'accepted',
          (error: unknown) => Code[ConnectError.from(error).code] ?? 'unknown',
        ),
      ),
    );
    // While it runs: another user logs in from elsewhere, and an authenticated call answers.
    const bystander = (async () => {
      const t0 = Date.now();
      const session = await login('bystander', '127.0.0.2');
      const me = await createClient(AuthService, transport(cp, '127.0.0.2', session.accessToken)).whoAmI({});
      return { ms: Date.now() - t0, username: me.user?.username };
    })();
    const authenticated = (async () => {
      const t0 = Date.now();
      const me = await admin(AuthService).whoAmI({});
      return { ms: Date.now() - t0, username: me.user?.username };
    })();
    const [outcomes, other, call] = await Promise.all([attack, bystander, authenticated]);
    const attackMs = Date.now() - started;
    console.info(
      `1,000 bad logins answered in ${attackMs} ms; meanwhile another user's login + call took ${other.ms} ms, an authenticated call ${call.ms} ms`,
    );
    expect(other.username).toBe('bystander');
    expect(call.username).toBe(ADMIN.username);
    expect(outcomes).not.toContain('accepted');
    const tally = Object.fromEntries(
      [...new Set(outcomes)].map((code) => [code, outcomes.filter((c) => c === code).length]),
    );
    console.info('attack outcomes', tally);
    // Throttled (no hash computed) far more often than a password was checked.
    expect(tally.ResourceExhausted ?? 0).toBeGreaterThan(900);

    // Locked: the right password is refused, with a retry-after hint; and from another address too.
    const locked = await refusal(login('victim', '127.0.0.3'));
    expect(Code[locked.code]).toBe('Unauthenticated');
    expect(locked.rawMessage).toMatch(/too many failed logins/);
    expect(Number(locked.metadata.get('retry-after'))).toBeGreaterThan(0);
    const lockedAt = Date.now();

    // After the lockout, the right password works (polling as a client would, honouring the answers).
    const session = await waitFor(() => login('victim', '127.0.0.3').catch(() => undefined), {
      timeoutMs: 90_000,
      intervalMs: 500,
      description: 'the victim to log in after the lockout',
    });
    expect(session.user?.username).toBe('victim');
    console.info(
      `the right password was accepted ${Date.now() - lockedAt} ms after it was refused as locked`,
    );

    // Audit: one login.locked row, and the 1,000 failures as a few summary rows whose counts add up.
    const audit = admin(AuditService);
    // Throttled attempts never reach the user lookup, so they are counted under the address without a user id;
    // the ones that were checked carry the victim's id.
    const summaries = await waitFor(
      async () => {
        const { events } = await audit.listAuditEvents({ action: 'login.failed', pageSize: 200 });
        const fromAttacker = events.filter((e) => e.ipAddress.endsWith('127.0.0.1'));
        const count = (e: (typeof events)[number]) => Number(/^count=(\d+)$/.exec(e.resourceId)?.[1]);
        const total = fromAttacker.reduce((sum, e) => sum + count(e), 0);
        return total >= 1000 && fromAttacker;
      },
      { timeoutMs: 60_000, intervalMs: 500, description: 'failed-login summaries counting 1,000 failures' },
    );
    expect(summaries.some((e) => e.userId === victimId)).toBe(true);
    expect(summaries.length).toBeLessThanOrEqual(10);
    const lockedRows = await audit.listAuditEvents({ action: 'login.locked', userId: victimId });
    expect(lockedRows.events).toHaveLength(1);
    const all = await audit.listAuditEvents({ pageSize: 1000 });
    expect(all.events.length).toBeLessThan(60);
    const verified = await audit.verifyAuditChain({});
    expect(verified.ok, verified.message).toBe(true);
  }, 240_000);

  it('limits one address spraying many user names', async () => {
    const sprayer = createClient(AuthService, transport(cp, '127.0.0.4'));
    const outcomes = await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        sprayer.login({ username: `spray-${i}`, password: 'Winter2026!' }).then(
          () => 'accepted',
          (error: unknown) => ConnectError.from(error),
        ),
      ),
    );
    const throttled = outcomes.filter(
      (o): o is ConnectError => o instanceof ConnectError && o.code === Code.ResourceExhausted,
    );
    console.info(`spray of 200 names from one address: ${throttled.length} throttled`);
    // 30 a minute: at most that many (plus what refills while it runs) reach a password check.
    expect(throttled.length).toBeGreaterThanOrEqual(200 - 45);
    expect(throttled[0]?.rawMessage).toMatch(/this address/);
    expect(Number(throttled[0]?.metadata.get('retry-after'))).toBeGreaterThan(0);
    // Another address is not affected.
    expect((await login('bystander', '127.0.0.5')).user?.username).toBe('bystander');
  }, 120_000);

  it('counts anonymous calls to audited RPCs in metrics instead of writing audit rows, and guards /metrics', async () => {
    const before = (await admin(AuditService).listAuditEvents({ action: 'bootstrap_token.create' })).events
      .length;
    const anonymous = createClient(BootstrapTokenService, transport(cp, '127.0.0.6'));
    const codes = await Promise.all(
      Array.from({ length: 200 }, () =>
        anonymous.createBootstrapToken({ description: 'x' }).then(
          () => 'ok',
          (error: unknown) => Code[ConnectError.from(error).code],
        ),
      ),
    );
    expect(new Set(codes)).toEqual(new Set(['Unauthenticated']));
    const after = (await admin(AuditService).listAuditEvents({ action: 'bootstrap_token.create' })).events
      .length;
    expect(after).toBe(before);

    expect((await getMetrics(cp)).status).toBe(401);
    const viewer = await login('bystander', '127.0.0.5');
    expect((await getMetrics(cp, viewer.accessToken)).status).toBe(403);
    const metrics = await getMetrics(cp, adminToken);
    expect(metrics.status).toBe(200);
    const counted =
      /sluice_unauthenticated_calls_total\{method="sluice\.v1\.BootstrapTokenService\/CreateBootstrapToken"\} (\d+)/.exec(
        metrics.body,
      );
    expect(Number(counted?.[1])).toBeGreaterThanOrEqual(200);
  }, 120_000);

  it('refuses an access token after logout', async () => {
    const session = await login('leaver', '127.0.0.7');
    const auth = createClient(AuthService, transport(cp, '127.0.0.7', session.accessToken));
    expect((await auth.whoAmI({})).user?.username).toBe('leaver');
    await auth.logout({ refreshToken: session.refreshToken });
    const refused = await refusal(auth.whoAmI({}));
    expect(Code[refused.code]).toBe('Unauthenticated');
    expect(refused.rawMessage).toMatch(/session/);
  }, 60_000);

  it('refuses an access token after a password reset', async () => {
    const session = await login('reset', '127.0.0.8');
    const auth = createClient(AuthService, transport(cp, '127.0.0.8', session.accessToken));
    expect((await auth.whoAmI({})).user?.username).toBe('reset');
    const newPassword = plantCanary(`pw-${randomToken(16)}`, 'login-abuse new password');
    await admin(UserService).updateUser({ id: session.user!.id, password: newPassword });
    const refused = await refusal(auth.whoAmI({}));
    expect(Code[refused.code]).toBe('Unauthenticated');
    const again = await login('reset', '127.0.0.8', newPassword);
    const fresh = createClient(AuthService, transport(cp, '127.0.0.8', again.accessToken));
    expect((await fresh.whoAmI({})).user?.username).toBe('reset');
  }, 60_000);

  it('ends a session at its absolute lifetime, however often it is refreshed', async () => {
    // A second control plane on the same catalog, with 10-second sessions.
    shortSessions = await startControlPlaneProcess(db, secrets, {
      name: 'short-session control plane',
      env: { ...LIMITS, SLUICE_SESSION_TTL: '10s' },
    });
    const auth = createClient(AuthService, transport(shortSessions, '127.0.0.9'));
    const first = await auth.login({ username: 'sessioned', password: passwords.get('sessioned')! });
    const startedAt = Date.now();
    let refreshToken = first.refreshToken;
    let accessToken = first.accessToken;
    let refreshes = 0;
    const ended = await waitFor(
      async () => {
        try {
          const next = await auth.refresh({ refreshToken });
          refreshToken = next.refreshToken;
          accessToken = next.accessToken;
          refreshes += 1;
          return false;
        } catch (error) {
          return ConnectError.from(error);
        }
      },
      { timeoutMs: 90_000, intervalMs: 1000, description: 'the session to reach its lifetime' },
    );
    expect(refreshes).toBeGreaterThan(0);
    expect(Code[ended.code]).toBe('Unauthenticated');
    expect(ended.rawMessage).toMatch(/maximum lifetime/);
    expect(Date.now() - startedAt).toBeGreaterThanOrEqual(8_000);
    // Its last access token ended with it.
    const refused = await refusal(
      createClient(AuthService, transport(shortSessions, '127.0.0.9', accessToken)).whoAmI({}),
    );
    expect(Code[refused.code]).toBe('Unauthenticated');
  }, 180_000);
});
