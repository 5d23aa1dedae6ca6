// A hostile "PostgreSQL" for attack tests: speaks just enough of the protocol to accept a connection
// (optionally upgrading to TLS with a certificate nobody trusts), asks for cleartext or MD5 password
// authentication, and records everything the client sends afterwards.
import { createServer, type Server, type Socket } from 'node:net';
import { TLSSocket } from 'node:tls';

export interface FakePostgres {
  host: string;
  port: number;
  /** Connections accepted so far. */
  connections: number;
  /** Every byte received after the startup message, per connection. */
  afterStartup: Buffer[];
  /** Password messages ('p') received. */
  passwordMessages: Buffer[];
  /** Whether any recorded byte sequence contains `needle`. */
  received(needle: string): boolean;
  close(): Promise<void>;
}

const SSL_REQUEST = 80877103;
const GSS_REQUEST = 80877104;

export async function startFakePostgres(options: {
  host?: string;
  /** Answer an SSLRequest with 'S' and this certificate; without it, 'N'. */
  tls?: { certPem: string; keyPem: string };
  /** Which password method to ask for (default cleartext). */
  auth?: 'cleartext' | 'md5';
}): Promise<FakePostgres> {
  const host = options.host ?? '127.0.0.1';
  const raw: Buffer[] = [];
  const state = {
    connections: 0,
    afterStartup: [] as Buffer[],
    passwordMessages: [] as Buffer[],
  };
  const sockets = new Set<Socket>();

  function speak(socket: Socket, allowUpgrade: boolean): void {
    let buffer = Buffer.alloc(0);
    let started = false;
    let recorded: Buffer | undefined;
    const onData = (chunk: Buffer) => {
      raw.push(chunk);
      if (started) {
        recorded = Buffer.concat([recorded ?? Buffer.alloc(0), chunk]);
        state.afterStartup[state.afterStartup.length - 1] = recorded;
        buffer = Buffer.concat([buffer, chunk]);
        while (buffer.length >= 5) {
          const length = buffer.readInt32BE(1);
          if (buffer.length < 1 + length) break;
          if (buffer[0] === 0x70) state.passwordMessages.push(buffer.subarray(0, 1 + length));
          buffer = buffer.subarray(1 + length);
        }
        return;
      }
      buffer = Buffer.concat([buffer, chunk]);
      if (buffer.length < 8) return;
      const length = buffer.readInt32BE(0);
      if (buffer.length < length) return;
      const code = buffer.readInt32BE(4);
      buffer = buffer.subarray(length);
      if (code === SSL_REQUEST || code === GSS_REQUEST) {
        if (code === SSL_REQUEST && options.tls && allowUpgrade) {
          socket.off('data', onData);
          socket.write('S');
          const secure = new TLSSocket(socket, {
            isServer: true,
            cert: options.tls.certPem,
            key: options.tls.keyPem,
          });
          secure.on('error', () => undefined);
          speak(secure, false);
          return;
        }
        socket.write('N');
        return;
      }
      // The startup message: ask for a password.
      started = true;
      state.afterStartup.push(Buffer.alloc(0));
      const request = Buffer.alloc(options.auth === 'md5' ? 13 : 9);
      request.write('R', 0);
      request.writeInt32BE(request.length - 1, 1);
      request.writeInt32BE(options.auth === 'md5' ? 5 : 3, 5);
      if (options.auth === 'md5') request.write('salt', 9);
      socket.write(request);
    };
    socket.on('data', onData);
  }

  const server: Server = createServer((socket) => {
    state.connections += 1;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    speak(socket, true);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve());
  });
  const address = server.address();
  if (!address || typeof address !== 'object') throw new Error('fake postgres did not bind');
  return {
    host,
    port: address.port,
    get connections() {
      return state.connections;
    },
    afterStartup: state.afterStartup,
    passwordMessages: state.passwordMessages,
    received(needle: string) {
      return Buffer.concat(raw).includes(needle);
    },
    close() {
      for (const socket of sockets) socket.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
