import { createServer, type Server, type Socket } from 'node:net';
import { create } from '@bufbuild/protobuf';
import { ConnectionTestSchema, DatasourceKind, DatasourceSecretsSchema, SslMode } from '@sluice/proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createConnectionTester } from './connection-tester.ts';

// A connection test is a probe an API user aims from inside the worker's network. These are the probes a
// port scan is made of; the answers must not tell them apart.

const secrets = create(DatasourceSecretsSchema, { password: 'pw' });

function postgresTest(host: string, port: number) {
  return create(ConnectionTestSchema, {
    testId: 't',
    datasource: {
      id: 'd',
      name: 'probe',
      kind: DatasourceKind.POSTGRES,
      config: {
        case: 'postgres',
        value: { host, port, database: 'app', username: 'u', sslMode: SslMode.VERIFY_FULL },
      },
    },
  });
}

function starrocksTest(host: string, httpPort: number, mysqlPort: number) {
  return create(ConnectionTestSchema, {
    testId: 't',
    datasource: {
      id: 'd',
      name: 'probe',
      kind: DatasourceKind.STARROCKS,
      config: {
        case: 'starrocks',
        value: { feHost: host, httpPort, mysqlPort, username: 'u', database: 'x' },
      },
    },
  });
}

function listen(server: Server): Promise<number> {
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)),
  );
}

describe('connection tests as a port scanner', () => {
  // "filtered": connects, then nothing ever answers (what a dropped SYN looks like to the driver: a timeout).
  const silent = createServer((socket: Socket) => socket.on('error', () => undefined));
  const sockets: Socket[] = [];
  silent.on('connection', (socket) => sockets.push(socket));
  let silentPort = 0;
  let closedPort = 0;

  beforeAll(async () => {
    silentPort = await listen(silent);
    const gone = createServer();
    closedPort = await listen(gone);
    await new Promise((resolve) => gone.close(resolve));
  });
  afterAll(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => silent.close(resolve));
  });

  const tester = createConnectionTester({
    ownAddresses: ['https://control-plane.internal:8443', '0.0.0.0:9464'],
    connectTimeoutMs: 300,
  });

  it('answers a closed port and a silent (filtered) one identically, with no latency, and not before the timeout', async () => {
    const asked = performance.now();
    const closed = await tester(postgresTest('127.0.0.1', closedPort), secrets);
    // A lower bound the tester guarantees (not a speed): a refused port must not answer sooner than a
    // filtered one would, or the wait would tell them apart.
    expect(performance.now() - asked).toBeGreaterThanOrEqual(300 - 1);
    const filtered = await tester(postgresTest('127.0.0.1', silentPort), secrets);
    expect(closed.ok).toBe(false);
    expect(closed.message).toBe(
      "probe: could not connect to 127.0.0.1 — check the host and port, and that the worker's network can reach it",
    );
    expect(filtered).toEqual(closed);
    expect(closed.latencyMs).toBe(0);
  });

  it('refuses ports outside 1–65535 before connecting', async () => {
    for (const port of [65_536, 70_000, 4_294_967_295]) {
      const answer = await tester(postgresTest('127.0.0.1', port), secrets);
      expect(answer.ok).toBe(false);
      expect(answer.message).toContain(`port ${port} is not a TCP port (1–65535)`);
    }
    const sr = await tester(starrocksTest('127.0.0.1', 8030, 99_999), secrets);
    expect(sr.message).toContain('port 99999 is not a TCP port');
  });

  it("refuses the control plane's own address and the worker's metrics port", async () => {
    for (const test of [
      postgresTest('control-plane.internal', 8443),
      postgresTest('Control-Plane.Internal.', 8443),
      starrocksTest('127.0.0.1', 9464, 9030),
      postgresTest('localhost', 9464),
      postgresTest('[::1]', 9464),
    ]) {
      const answer = await tester(test, secrets);
      expect(answer.ok).toBe(false);
      expect(answer.message).toContain("is Sluice's own address");
      expect(answer.latencyMs).toBe(0);
    }
    // The same port on another host is a database like any other (here: nothing listens).
    const elsewhere = await tester(postgresTest('127.0.0.1', 8443), secrets);
    expect(elsewhere.message).not.toContain("Sluice's own address");
  });
});
