// The worker's only listening socket: Prometheus metrics and a liveness probe for orchestrators. It carries no
// job data or secrets, so it is plain HTTP on an address the operator chooses (loopback by default).
import { createServer, type Server } from 'node:http';
import type { Registry } from 'prom-client';
import type { AgentState } from './agent-state.ts';

export interface MetricsServer {
  port: number;
  close(): Promise<void>;
}

/** Serves `GET /metrics` from `registry` and `GET /healthz` (200 while the agent is live, 503 otherwise). */
export function startMetricsServer(
  listen: string,
  registry: Registry,
  state: () => AgentState,
): Promise<MetricsServer> {
  const colon = listen.lastIndexOf(':');
  const host = listen.slice(0, colon).replace(/^\[|\]$/g, '');
  const port = Number(listen.slice(colon + 1));
  const server: Server = createServer((req, res) => {
    if (req.method !== 'GET') {
      res.writeHead(405, { allow: 'GET' }).end();
      return;
    }
    if (req.url === '/healthz') {
      const current = state();
      const healthy = current === 'initialized' || current === 'running' || current === 'draining';
      res.writeHead(healthy ? 200 : 503, { 'content-type': 'text/plain' }).end(`${current}\n`);
      return;
    }
    if (req.url === '/metrics') {
      registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
        () => res.writeHead(500).end(),
      );
      return;
    }
    res.writeHead(404).end();
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      const address = server.address();
      resolve({
        port: typeof address === 'object' && address ? address.port : port,
        close: () => new Promise((done) => server.close(() => done())),
      });
    });
  });
}
