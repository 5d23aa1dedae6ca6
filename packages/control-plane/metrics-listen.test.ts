// SLUICE_METRICS_LISTEN: a second, plain-HTTP listener serving /metrics and /healthz without a token, for a
// scraper that has none; the main port's /metrics still needs an operator token.
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import { createKeyring, generateEncryptionKey } from '@sluice/crypto';
import { createTestCa, createTestDatabase } from '@sluice/testkit';
import { describe, expect, it } from 'vitest';
import { ConfigError, type ControlPlaneConfig, loadConfig } from './config.ts';
import { startControlPlane } from './control-plane.ts';

const base = {
  CONFIG_ENCRYPTION_KEY: generateEncryptionKey(),
  JWT_SECRET: generateEncryptionKey(),
  DATABASE_URL: 'postgres://cp@db.internal:5432/sluice',
};

function get(port: number, path: string, method = 'GET'): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (part: string) => (body += part));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.once('error', reject);
    req.end();
  });
}

describe('SLUICE_METRICS_LISTEN', () => {
  it('is off by default and parsed as host:port, naming itself when wrong', () => {
    expect(loadConfig(base).metricsListen).toBeUndefined();
    expect(loadConfig({ ...base, SLUICE_METRICS_LISTEN: '127.0.0.1:9464' }).metricsListen).toEqual({
      host: '127.0.0.1',
      port: 9464,
    });
    expect(loadConfig({ ...base, SLUICE_METRICS_LISTEN: '[::1]:0' }).metricsListen).toEqual({
      host: '::1',
      port: 0,
    });
    expect(() => loadConfig({ ...base, SLUICE_METRICS_LISTEN: '9464' })).toThrow(ConfigError);
    expect(() => loadConfig({ ...base, SLUICE_METRICS_LISTEN: 'h:70000' })).toThrow(
      /^SLUICE_METRICS_LISTEN: /,
    );
  });

  it('serves /metrics and /healthz without a token on its own port, and nothing else', async () => {
    const db = await createTestDatabase('metrics-listen');
    const ca = await createTestCa('Metrics listen test CA');
    const serverCert = await ca.issueServer(['localhost', '127.0.0.1']);
    const config: ControlPlaneConfig = {
      listen: { host: '127.0.0.1', port: 0 },
      metricsListen: { host: '127.0.0.1', port: 0 },
      dataDir: '/nonexistent-data-dir',
      catalog: { kind: 'config', config: { ...db.config, max: 4 } },
      keyring: createKeyring(generateEncryptionKey()),
      jwtSecret: new Uint8Array(randomBytes(32)),
      tls: { certPem: serverCert.certPem, keyPem: serverCert.keyPem, caPem: ca.certPem },
      trustDomain: 'sluice.test',
      accessTokenTtlMs: 600_000,
      refreshTokenTtlMs: 3_600_000,
      envelopeTtlMs: 60_000,
      heartbeatIntervalMs: 5_000,
      workerCertificateTtlMs: 3_600_000,
      firstAdmin: undefined,
      logLevel: 'silent',
    };
    const cp = await startControlPlane(config);
    try {
      const port = cp.metricsPort!;
      expect(port).toBeGreaterThan(0);
      expect(port).not.toBe(cp.port);
      const metrics = await get(port, '/metrics');
      expect(metrics.status).toBe(200);
      expect(metrics.body).toContain('sluice_unauthenticated_calls_total');
      expect(metrics.body).toContain('sluice_process_cpu');
      expect(await get(port, '/healthz')).toEqual({ status: 200, body: 'serving\n' });
      // Only those two: the API is not reachable through the plain-HTTP port.
      expect((await get(port, '/sluice.v1.AuthService/Login', 'POST')).status).toBe(405);
      expect((await get(port, '/sluice.v1.AuthService/Login')).status).toBe(404);
      // The main port still wants an operator token.
      const main = await new Promise<number>((resolve, reject) => {
        https
          .get(
            {
              host: '127.0.0.1',
              port: cp.port,
              path: '/metrics',
              ca: ca.certPem,
              servername: 'localhost',
              agent: false,
            },
            (res) => {
              res.resume();
              resolve(res.statusCode ?? 0);
            },
          )
          .once('error', reject);
      });
      expect(main).toBe(401);
    } finally {
      await cp.stop();
      await db.drop();
    }
    await expect(get(cp.metricsPort!, '/healthz')).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });
});
