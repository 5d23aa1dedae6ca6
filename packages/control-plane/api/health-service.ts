// grpc.health.v1: SERVING while the control plane takes calls, NOT_SERVING once shutdown begins (so load
// balancers stop sending before connections close). Services are named by their full proto name; "" is the
// whole server.
import type { ServiceImpl } from '@connectrpc/connect';
import { health } from '@sluice/proto';
import { notFound } from '../errors.ts';

const { HealthCheckResponse_ServingStatus: Status } = health;

export interface HealthState {
  serving(): boolean;
  /** Resolves when serving() turns false. */
  stopped: Promise<void>;
}

export function createHealthService(
  state: HealthState,
  serviceNames: readonly string[],
): ServiceImpl<typeof health.Health> {
  const known = new Set(['', ...serviceNames]);
  const status = () => (state.serving() ? Status.SERVING : Status.NOT_SERVING);
  return {
    check(req) {
      if (!known.has(req.service)) throw notFound('service', req.service);
      return { status: status() };
    },
    async *watch(req, ctx) {
      // Watch reports unknown services as SERVICE_UNKNOWN instead of failing, as the protocol asks.
      if (!known.has(req.service)) {
        yield { status: Status.SERVICE_UNKNOWN };
        return;
      }
      yield { status: status() };
      if (!state.serving()) return;
      const aborted = new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve()));
      await Promise.race([state.stopped, aborted]);
      if (!ctx.signal.aborted) yield { status: Status.NOT_SERVING };
    },
  };
}
