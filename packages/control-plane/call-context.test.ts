import { createClient } from '@connectrpc/connect';
import { createGrpcTransport } from '@connectrpc/connect-node';
import { createWorkerCsr } from '@sluice/crypto';
import { WorkerService } from '@sluice/proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { peerKey } from './call-context.ts';
import { startTestControlPlane, type TestControlPlane } from './test-control-plane.ts';

describe('what handlers learn about the caller', () => {
  let t: TestControlPlane;
  beforeAll(async () => {
    t = await startTestControlPlane({
      label: 'cp_peer',
      // A stand-in worker service that echoes what the context values say about the TLS peer.
      extraRoutes: (router) =>
        router.service(WorkerService, {
          register(_req, ctx) {
            const peer = ctx.values.get(peerKey);
            return {
              workerId: JSON.stringify({
                ip: peer.remoteAddress,
                authorized: peer.authorized,
                san: peer.peerCertificate?.subjectaltname ?? null,
                protocol: peer.tlsProtocol,
              }),
            };
          },
        }),
    });
  });
  afterAll(async () => {
    await t?.stop();
  });

  it('passes the remote IP, a verified client certificate and the TLS version through context values', async () => {
    const { csrPem, keyPem } = await createWorkerCsr();
    const workerId = 'c0ffee00-0000-4000-8000-000000000001';
    const issued = await t.cp.internalCa.issueWorkerCertificate({ csrPem, workerId });
    const transport = createGrpcTransport({
      baseUrl: t.cp.url,
      nodeOptions: { ca: t.ca.certPem, cert: issued.certPem, key: keyPem },
    });
    const res = await createClient(WorkerService, transport).register({});
    expect(JSON.parse(res.workerId)).toEqual({
      ip: '127.0.0.1',
      authorized: true,
      san: `URI:spiffe://sluice.test/worker/${workerId}`,
      protocol: 'TLSv1.3',
    });
  });

  it('says unauthorized when no client certificate was presented', async () => {
    const res = await createClient(WorkerService, t.transport('grpc')).register({});
    expect(JSON.parse(res.workerId)).toMatchObject({ authorized: false, san: null, protocol: 'TLSv1.3' });
  });
});
