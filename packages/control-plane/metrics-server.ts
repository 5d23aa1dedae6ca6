// The control plane's optional second socket (SLUICE_METRICS_LISTEN): Prometheus metrics and a liveness probe
// for a scraper or orchestrator that holds no access token. /metrics on the main TLS port needs an operator
// token; this listener does not, so it is plain HTTP meant for loopback or a monitoring-only network, and it
// serves nothing else — no API, no catalog data beyond the metrics themselves.
import { createServer, type Server } from 'node:http';
import type { Registry } from 'prom-client';

export interface MetricsServer {
  host: string;
  port: number;
  close(): Promise<void>;
}

/** Serves `GET /metrics` from `registry` and `GET /healthz` (200 while `serving()`, 503 once stopping). */
export function startMetricsServer(
  listen: { host: string; port: number },
  registry: Registry,
  serving: () => boolean,
): Promise<MetricsServer> {
  const server: Server = createServer((req, res) => {
    res.setHeader('cache-control', 'no-store');
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    const path = (req.url ?? '').split('?')[0];
    if (path === '/healthz') {
      const up = serving();
      res.writeHead(up ? 200 : 503, { 'content-type': 'text/plain' }).end(up ? 'serving\n' : 'stopping\n');
      return;
    }
    if (path === '/metrics') {
      registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
        () => res.writeHead(500).end(),
      );
      return;
    }
    res.writeHead(404).end();
  });
  // Scrapers keep connections alive; a stop must not wait for them.
  server.keepAliveTimeout = 5_000;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(listen.port, listen.host, () => {
      server.off('error', reject);
      const address = server.address();
      resolve({
        host: listen.host,
        port: typeof address === 'object' && address ? address.port : listen.port,
        close: () =>
          new Promise((done) => {
            server.close(() => done());
            server.closeAllConnections();
          }),
      });
    });
  });
}
