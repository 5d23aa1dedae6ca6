// The worker's side of WorkerService, on @grpc/grpc-js over TLS 1.3. The control plane is connect-node;
// grpc-js speaks plain gRPC to it (tested for interop). Requests and responses are protobuf-es messages, so
// the client is built from the generated service descriptor instead of a second code generator.

import type { DescMessage, DescMethodUnary, MessageShape } from '@bufbuild/protobuf';
import { create, fromBinary, type MessageInitShape, toBinary } from '@bufbuild/protobuf';
import * as grpc from '@grpc/grpc-js';
import { clientSecureContext } from '@sluice/crypto';
import { WorkerService } from '@sluice/proto';

type WorkerMethods = typeof WorkerService.method;

/** Promise-returning WorkerService calls, named as in the proto. */
export type ControlClient = {
  [K in keyof WorkerMethods]: WorkerMethods[K] extends DescMethodUnary<infer I, infer O>
    ? (request: MessageInitShape<I>, options?: CallOptions) => Promise<MessageShape<O>>
    : never;
} & { close(): void };

export interface CallOptions {
  /** Milliseconds until the call is abandoned (default 15,000). */
  timeoutMs?: number;
  /** Cancels the call (e.g. a long poll when the agent drains). */
  signal?: AbortSignal;
}

export interface ControlClientOptions {
  /** `host:port` of the control plane. */
  address: string;
  /** The CA the operator configured for the control plane (PEM): the only root trusted for the server. */
  caPem: string;
  /** Client certificate and key, PEM; absent before registration. */
  certPem?: string;
  keyPem?: string;
  /** TLS server name to verify (default: the host part of `address`). */
  serverName?: string;
}

/** The gRPC status code of a failed call, or undefined for anything else. */
export function grpcCode(error: unknown): grpc.status | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? code : undefined;
}

export function createControlClient(options: ControlClientOptions): ControlClient {
  const secureContext = clientSecureContext({
    caPem: options.caPem,
    ...(options.certPem && options.keyPem && { certPem: options.certPem, keyPem: options.keyPem }),
  });
  const credentials = grpc.credentials.createFromSecureContext(secureContext);
  const host = options.serverName ?? hostOf(options.address);
  const client = new grpc.Client(options.address, credentials, {
    'grpc.ssl_target_name_override': host,
    'grpc.default_authority': host,
    // Long polls hold a call open for up to 30 s; keepalive notices a dead control plane sooner.
    'grpc.keepalive_time_ms': 20_000,
    'grpc.keepalive_timeout_ms': 10_000,
  });

  const calls: Record<string, unknown> = { close: () => client.close() };
  for (const [name, method] of Object.entries(WorkerService.method)) {
    calls[name] = unary(client, method as DescMethodUnary);
  }
  return calls as ControlClient;
}

function unary<I extends DescMessage, O extends DescMessage>(
  client: grpc.Client,
  method: DescMethodUnary<I, O>,
) {
  const path = `/${method.parent.typeName}/${method.name}`;
  const serialize = (message: MessageShape<I>) => Buffer.from(toBinary(method.input, message));
  const deserialize = (bytes: Buffer) => fromBinary(method.output, bytes);
  return (request: MessageInitShape<I>, options: CallOptions = {}): Promise<MessageShape<O>> =>
    new Promise((resolve, reject) => {
      const call = client.makeUnaryRequest(
        path,
        serialize,
        deserialize,
        create(method.input, request),
        new grpc.Metadata(),
        { deadline: Date.now() + (options.timeoutMs ?? 15_000) },
        (error, response) =>
          error || !response ? reject(error ?? new Error('empty response')) : resolve(response),
      );
      options.signal?.addEventListener('abort', () => call.cancel(), { once: true });
    });
}

function hostOf(address: string): string {
  const bracketed = /^\[([^\]]+)\]/.exec(address);
  if (bracketed?.[1]) return bracketed[1];
  const colon = address.lastIndexOf(':');
  return colon > 0 ? address.slice(0, colon) : address;
}
