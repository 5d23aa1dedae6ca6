import { Gauge, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import type { AgentState } from './agent-state.ts';
import { startMetricsServer } from './metrics-server.ts';

describe('the worker metrics server', () => {
  it('serves Prometheus metrics and a liveness probe that follows the agent state', async () => {
    const registry = new Registry();
    new Gauge({ name: 'sluice_test_gauge', help: 'test', registers: [registry] }).set(3);
    let state: AgentState = 'running';
    const server = await startMetricsServer('127.0.0.1:0', registry, () => state);
    try {
      const base = `http://127.0.0.1:${server.port}`;
      const metrics = await fetch(`${base}/metrics`);
      expect(metrics.status).toBe(200);
      expect(await metrics.text()).toContain('sluice_test_gauge 3');
      expect((await fetch(`${base}/healthz`)).status).toBe(200);
      state = 'failed';
      expect((await fetch(`${base}/healthz`)).status).toBe(503);
      expect((await fetch(`${base}/nope`)).status).toBe(404);
      expect((await fetch(`${base}/metrics`, { method: 'POST' })).status).toBe(405);
    } finally {
      await server.close();
    }
  });
});
