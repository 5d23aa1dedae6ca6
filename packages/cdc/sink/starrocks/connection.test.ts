// TLS on the StarRocks MySQL port: chain AND name verified before the client sends its credentials. The
// emulator's MySQL port (mysql2's server) has no TLS, so this file runs a minimal MySQL handshake itself: it
// offers CLIENT_SSL, upgrades the socket after the client's SSLRequest, and records whatever the client
// sends inside TLS (the handshake response carrying the user and password token).
import net from 'node:net';
import tls from 'node:tls';
import { createTestCa, type TestCa, type TestKeyPair } from '@sluice/testkit';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createStarRocksConnection, type StarRocksDatasource } from './connection.ts';
import { StarRocksError } from './starrocks-error.ts';

const CLIENT_LONG_PASSWORD = 0x1;
const CLIENT_LONG_FLAG = 0x4;
const CLIENT_PROTOCOL_41 = 0x200;
const CLIENT_SSL = 0x800;
const CLIENT_TRANSACTIONS = 0x2000;
const CLIENT_SECURE_CONNECTION = 0x8000;
const CLIENT_PLUGIN_AUTH = 0x80000;
const CAPABILITIES =
  CLIENT_LONG_PASSWORD |
  CLIENT_LONG_FLAG |
  CLIENT_PROTOCOL_41 |
  CLIENT_SSL |
  CLIENT_TRANSACTIONS |
  CLIENT_SECURE_CONNECTION |
  CLIENT_PLUGIN_AUTH;

function packet(sequence: number, payload: Buffer): Buffer {
  const header = Buffer.alloc(4);
  header.writeUIntLE(payload.length, 0, 3);
  header[3] = sequence;
  return Buffer.concat([header, payload]);
}

function handshakeV10(): Buffer {
  const caps = Buffer.alloc(2);
  const upper = Buffer.alloc(2);
  caps.writeUInt16LE(CAPABILITIES & 0xffff);
  upper.writeUInt16LE(CAPABILITIES >>> 16);
  const connectionId = Buffer.alloc(4);
  connectionId.writeUInt32LE(1);
  return packet(
    0,
    Buffer.concat([
      Buffer.from([0x0a]),
      Buffer.from('8.0.33-tls-test\0'),
      connectionId,
      Buffer.from('abcdefgh'),
      Buffer.from([0x00]),
      caps,
      Buffer.from([0x21, 0x02, 0x00]),
      upper,
      Buffer.from([21]),
      Buffer.alloc(10),
      Buffer.from('ijklmnopqrst\0'),
      Buffer.from('mysql_native_password\0'),
    ]),
  );
}

const ok = (sequence: number) => packet(sequence, Buffer.from([0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00]));

interface FakeMysqlTls {
  port: number;
  /** Bytes the client sent inside TLS: the handshake response (user, password token) and statements. */
  received: () => Buffer;
  /** True once a TLS handshake completed on the server side. */
  handshakes: () => number;
  close(): Promise<void>;
}

/** A MySQL port that only speaks TLS, presenting `certificate`; answers OK to login and every statement. */
async function startFakeMysqlTls(
  certificate: TestKeyPair,
  options: { maxVersion?: tls.SecureVersion } = {},
): Promise<FakeMysqlTls> {
  const chunks: Buffer[] = [];
  let handshakes = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    socket.write(handshakeV10());
    let buffered = Buffer.alloc(0);
    const onPlain = (data: Buffer) => {
      buffered = Buffer.concat([buffered, data]);
      if (buffered.length < 36) return; // the 32-byte SSLRequest behind its 4-byte header
      socket.off('data', onPlain);
      socket.pause();
      // The ClientHello may have arrived in the same chunk as the SSLRequest: hand it back to the stream.
      if (buffered.length > 36) socket.unshift(buffered.subarray(36));
      const secure = new tls.TLSSocket(socket, {
        isServer: true,
        cert: certificate.certPem,
        key: certificate.keyPem,
        ...(options.maxVersion ? { maxVersion: options.maxVersion } : {}),
      });
      secure.on('error', () => {});
      secure.on('secure', () => handshakes++);
      let sequence = 0;
      secure.on('data', (data: Buffer) => {
        chunks.push(data);
        // First the handshake response (sequence 2 → OK 3), then one command per packet (→ OK 1).
        secure.write(ok(sequence === 0 ? 3 : 1));
        sequence++;
      });
    };
    socket.on('data', onPlain);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    received: () => Buffer.concat(chunks),
    handshakes: () => handshakes,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

const PASSWORD = 'sink-password-canary';

function datasource(host: string, port: number, ca: string): StarRocksDatasource {
  return {
    name: 'warehouse',
    host,
    queryPort: port,
    user: 'loader',
    password: PASSWORD,
    database: 'analytics',
    ssl: { ca },
  };
}

describe('StarRocks MySQL-port TLS', () => {
  let authority: TestCa;
  let server: FakeMysqlTls | undefined;

  beforeAll(async () => {
    authority = await createTestCa('Sluice StarRocks MySQL Test CA');
  });
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  async function attempt(host: string, certificate: TestKeyPair, maxVersion?: tls.SecureVersion) {
    server = await startFakeMysqlTls(certificate, maxVersion ? { maxVersion } : {});
    const connection = createStarRocksConnection(datasource(host, server.port, authority.certPem));
    try {
      return await connection.query('SELECT 1').then(
        (rows) => ({ rows }),
        (error: unknown) => ({ error }),
      );
    } finally {
      await connection.close();
    }
  }

  it('refuses a trusted certificate issued for another name, before sending credentials', async () => {
    const outcome = await attempt('localhost', await authority.issueServer(['starrocks.other.example']));
    expect('error' in outcome).toBe(true);
    const error = (outcome as { error: unknown }).error;
    expect(error).toBeInstanceOf(StarRocksError);
    expect(error).toMatchObject({ kind: 'operator' });
    const message = (error as StarRocksError).message;
    expect(message).toContain(`at localhost:${server!.port}`);
    expect(message).toContain('not valid for the expected name "localhost"');
    expect(message).toContain('DNS:starrocks.other.example');
    expect(message).not.toContain(PASSWORD);
    // The client stopped during the TLS handshake: nothing, in particular no login, reached the server.
    expect(server!.received().length).toBe(0);
  });

  it('accepts a certificate for the host it connects to, and logs in inside TLS', async () => {
    const outcome = await attempt('localhost', await authority.issueServer(['localhost']));
    expect(outcome).toEqual({ rows: [] });
    expect(server!.handshakes()).toBe(1);
    expect(server!.received().includes(Buffer.from('loader\0'))).toBe(true);
  });

  it('checks an address against the IP SANs: a DNS name for it is not enough', async () => {
    const outcome = await attempt('127.0.0.1', await authority.issueServer(['localhost']));
    const error = (outcome as { error?: unknown }).error;
    expect(error).toBeInstanceOf(StarRocksError);
    expect((error as StarRocksError).message).toContain('not valid for the expected name "127.0.0.1"');
    expect(server!.received().length).toBe(0);
  });

  it('accepts an address listed as an IP SAN', async () => {
    expect(await attempt('127.0.0.1', await authority.issueServer(['127.0.0.1']))).toEqual({ rows: [] });
  });

  it('still speaks TLS 1.2 to an FE that offers nothing newer', async () => {
    expect(await attempt('localhost', await authority.issueServer(['localhost']), 'TLSv1.2')).toEqual({
      rows: [],
    });
  });

  it('refuses a certificate for the right name from an untrusted CA', async () => {
    const stranger = await createTestCa('Some Other CA');
    const outcome = await attempt('localhost', await stranger.issueServer(['localhost']));
    const error = (outcome as { error?: unknown }).error;
    expect(error).toMatchObject({ kind: 'operator' });
    expect((error as Error).message).toMatch(/TLS certificate not trusted/);
    expect(server!.received().length).toBe(0);
  });
});
