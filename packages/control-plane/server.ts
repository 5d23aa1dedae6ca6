// The control plane's one port: a node:http2 secure server (TLS 1.3 only, from @sluice/crypto's policy) that
// answers gRPC, Connect and gRPC-Web through connect-node, plus GET /metrics for an operator or admin (bearer
// access token, as for the API: metrics name methods, jobs and workers, which aren't for anyone). Shutdown is graceful: new calls
// are refused with 503 (Unavailable), calls in flight finish, then connections close.

import type { IncomingMessage, ServerResponse } from 'node:http';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import type { PeerCertificate, TLSSocket } from 'node:tls';
import {
  Code,
  ConnectError,
  type ConnectRouter,
  createContextValues,
  type Interceptor,
} from '@connectrpc/connect';
import { connectNodeAdapter } from '@connectrpc/connect-node';
import { rotationTlsOptions, serverTlsOptions, type TlsMaterial } from '@sluice/crypto';
import type { Logger } from 'pino';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { type CallPeer, peerKey } from './call-context.ts';

export interface ServerOptions {
  host: string;
  port: number;
  tls: TlsMaterial;
  routes: (router: ConnectRouter) => void;
  /** Run outermost first, after the metrics interceptor. */
  interceptors: Interceptor[];
  registry: Registry;
  logger: Logger;
  /** Decides who may read /metrics from the request's authorization header. */
  authorizeMetrics: (authorization: string | undefined) => Promise<'ok' | 'unauthenticated' | 'forbidden'>;
  /**
   * Checked synchronously right after the handshake for a connection presenting a client certificate TLS
   * verified: a reason (e.g. 'superseded', 'revoked') closes the connection before any request is read.
   * Connections without a client certificate (CLI, portal, registering workers) are not checked.
   */
  refuseClientCertificate?: (certificate: PeerCertificate) => string | undefined;
}

export interface RunningServer {
  host: string;
  port: number;
  /** Replaces the certificate (and client CA) for new connections, repeating the full TLS policy. */
  rotateTls(material: TlsMaterial): void;
  /** Refuses new calls, waits for in-flight ones (at most `graceMs`), then closes every connection. */
  shutdown(graceMs?: number): Promise<void>;
}

type Request = IncomingMessage | http2.Http2ServerRequest;
type Response = ServerResponse | http2.Http2ServerResponse;

export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const { logger, registry } = options;
  const requests = new Counter({
    name: 'sluice_rpc_requests_total',
    help: 'RPCs handled, by method and result code',
    labelNames: ['method', 'code'] as const,
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'sluice_rpc_duration_seconds',
    help: 'RPC handling time until the response (or, for streams, its first message) is ready',
    labelNames: ['method'] as const,
    registers: [registry],
  });
  const inFlightGauge = new Gauge({
    name: 'sluice_http_requests_in_flight',
    help: 'HTTP requests being served',
    registers: [registry],
  });

  const metrics: Interceptor = (next) => async (req) => {
    const method = `${req.service.typeName}/${req.method.name}`;
    const end = duration.startTimer({ method });
    let code = 'ok';
    try {
      return await next(req);
    } catch (error) {
      code = Code[ConnectError.from(error).code] ?? 'unknown';
      throw error;
    } finally {
      requests.inc({ method, code });
      const seconds = end();
      // Method and code only: request messages and error texts may hold input that is not ours to log.
      logger.debug({ method, code, ms: Math.round(seconds * 1000) }, 'rpc');
    }
  };

  const adapter = connectNodeAdapter({
    routes: options.routes,
    interceptors: [metrics, ...options.interceptors],
    contextValues: (req) => createContextValues().set(peerKey, peerOf(req as Request)),
  });

  let closing = false;
  let inFlight = 0;
  let idle: (() => void) | undefined;

  const handler = (req: Request, response: Response) => {
    // Both response types share this surface; the union itself isn't callable in TypeScript.
    const res = response as ServerResponse;
    if (req.method === 'GET' && req.url === '/metrics') {
      options
        .authorizeMetrics(req.headers.authorization)
        .then(async (verdict) => {
          if (verdict !== 'ok') {
            res.writeHead(verdict === 'forbidden' ? 403 : 401, {
              'content-type': 'text/plain',
              ...(verdict === 'unauthenticated' && { 'www-authenticate': 'Bearer realm="sluice"' }),
            });
            res.end(
              verdict === 'forbidden'
                ? '/metrics needs role operator or admin\n'
                : '/metrics needs an operator or admin access token: Authorization: Bearer <token>\n',
            );
            return;
          }
          const body = await registry.metrics();
          res.writeHead(200, { 'content-type': registry.contentType });
          res.end(body);
        })
        .catch(() => {
          res.writeHead(500);
          res.end();
        });
      return;
    }
    if (closing) {
      // Connect and gRPC clients both map HTTP 503 to Unavailable: retry elsewhere.
      res.writeHead(503, { 'content-type': 'text/plain' });
      res.end('control plane is shutting down');
      return;
    }
    inFlight += 1;
    inFlightGauge.inc();
    let counted = true;
    const done = () => {
      if (!counted) return;
      counted = false;
      inFlight -= 1;
      inFlightGauge.dec();
      if (closing && inFlight === 0) idle?.();
    };
    res.once('close', done);
    res.once('finish', done);
    (adapter as (req: Request, res: Response) => void)(req, response);
  };

  const server = http2.createSecureServer(serverTlsOptions(options.tls), handler);
  const sessions = new Set<http2.ServerHttp2Session>();
  const sockets = new Set<TLSSocket>();
  server.on('session', (session) => {
    sessions.add(session);
    session.once('close', () => sessions.delete(session));
  });
  const refusedConnections = new Counter({
    name: 'sluice_tls_refused_client_certificates_total',
    help: 'Connections closed right after the handshake for the client certificate they presented, by reason',
    labelNames: ['reason'] as const,
    registers: [registry],
  });
  const refuse = options.refuseClientCertificate;
  server.on('secureConnection', (socket: TLSSocket) => {
    if (refuse && socket.authorized) {
      const certificate = socket.getPeerCertificate(false);
      const reason = certificate && Object.keys(certificate).length > 0 ? refuse(certificate) : undefined;
      if (reason) {
        // Before any request: the HTTP/2 session has read nothing yet. Calls (and their per-RPC audit) never
        // happen; a counter, not a log line per connection, since a stolen certificate can reconnect at will.
        refusedConnections.inc({ reason });
        socket.destroy();
        return;
      }
    }
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  // Handshake failures (TLS 1.2 clients, plain HTTP, port scanners) are normal on an open port: note them
  // at debug level without anything the peer sent.
  server.on('tlsClientError', (error: Error & { code?: string }) => {
    logger.debug({ code: error.code }, 'TLS handshake refused');
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  logger.info({ host: address.address, port: address.port }, 'control plane listening');

  return {
    host: address.address,
    port: address.port,
    rotateTls(material) {
      server.setSecureContext(rotationTlsOptions(material));
      logger.info('TLS certificate rotated');
    },
    async shutdown(graceMs = 10_000) {
      if (closing) return;
      closing = true;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      // GOAWAY: streams already open finish, the client opens no new ones on this connection.
      for (const session of sessions) session.close();
      if (inFlight > 0) {
        await new Promise<void>((resolve) => {
          idle = resolve;
          setTimeout(resolve, graceMs).unref();
        });
      }
      for (const session of sessions) session.destroy();
      for (const socket of sockets) socket.destroy();
      await closed;
      logger.info('control plane stopped');
    },
  };
}

function peerOf(req: Request): CallPeer {
  const socket = ('stream' in req ? req.stream.session?.socket : req.socket) as TLSSocket | undefined;
  if (!socket) return { remoteAddress: '', peerCertificate: undefined, authorized: false, tlsProtocol: null };
  const certificate =
    typeof socket.getPeerCertificate === 'function' ? socket.getPeerCertificate(false) : undefined;
  return {
    remoteAddress: socket.remoteAddress ?? '',
    // Node returns an empty object when no certificate was presented.
    peerCertificate: certificate && Object.keys(certificate).length > 0 ? certificate : undefined,
    authorized: socket.authorized === true,
    tlsProtocol: typeof socket.getProtocol === 'function' ? socket.getProtocol() : null,
  };
}
