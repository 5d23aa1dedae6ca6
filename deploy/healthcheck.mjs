// Container health probe for the Sluice image (Dockerfile HEALTHCHECK, docker-compose.yml). It finds the
// Sluice process in the container and asks it the question that matters for its role:
//   control plane — grpc.health.v1 Check over the Connect protocol on its TLS 1.3 port (SLUICE_LISTEN);
//   worker        — its metrics listener (SLUICE_METRICS_LISTEN) answers GET /healthz with 200 while the agent is live.
// Plain JavaScript because it runs outside the TypeScript project, in the image only. Exit 0 healthy, 1 not.
import { readdirSync, readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';

const TIMEOUT_MS = 4000;

function sluiceCommand() {
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    let argv;
    try {
      argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    } catch {
      continue;
    }
    const entry = argv.findIndex((arg) => arg.endsWith('packages/cli/main.ts'));
    if (entry >= 0) return argv[entry + 1];
  }
  return undefined;
}

// "0.0.0.0:8443", "[::]:8443", "127.0.0.1:8443" → where to knock from inside the container.
function loopbackTarget(listen, fallbackPort) {
  const match = /^(?:\[(.+)\]|([^:]*)):(\d+)$/.exec(listen ?? '');
  const host = match?.[1] ?? match?.[2] ?? '';
  const port = Number(match?.[3] ?? fallbackPort);
  return { host: host.includes(':') ? '::1' : '127.0.0.1', port };
}

function request(module, options, body) {
  return new Promise((resolve, reject) => {
    const req = module.request({ ...options, timeout: TIMEOUT_MS }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => {
        text += chunk;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${TIMEOUT_MS} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}

async function probeControlPlane() {
  const { host, port } = loopbackTarget(process.env.SLUICE_LISTEN, 8443);
  const body = '{}';
  const res = await request(
    https,
    {
      host,
      port,
      method: 'POST',
      path: '/grpc.health.v1.Health/Check',
      headers: {
        'content-type': 'application/json',
        'connect-protocol-version': '1',
        'content-length': Buffer.byteLength(body),
      },
      minVersion: 'TLSv1.3',
      // A loopback liveness probe that sends nothing secret: the certificate names the service's public
      // host, not 127.0.0.1, so identity isn't what is checked here — only that TLS 1.3 is served and the
      // health service answers SERVING.
      rejectUnauthorized: false,
    },
    body,
  );
  if (res.status !== 200) throw new Error(`health check answered HTTP ${res.status}`);
  const status = JSON.parse(res.text).status;
  if (status !== 'SERVING') throw new Error(`health status is ${status ?? 'missing'}`);
}

async function probeWorker() {
  const { host, port } = loopbackTarget(process.env.SLUICE_METRICS_LISTEN, 9464);
  const res = await request(http, { host, port, method: 'GET', path: '/healthz' });
  if (res.status !== 200) throw new Error(`healthz answered HTTP ${res.status} (agent not live)`);
}

try {
  const command = sluiceCommand();
  if (command === 'control-plane') await probeControlPlane();
  else if (command === 'worker') await probeWorker();
  else throw new Error(`no Sluice control plane or worker process found (command: ${command ?? 'none'})`);
  process.exit(0);
} catch (error) {
  console.error(`unhealthy: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
}
