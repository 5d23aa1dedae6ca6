// Connect clients for the admin API: HTTP/2 over TLS 1.3 to the control plane, trusting `--ca-file`, with
// the stored session's access token — refreshed first when it is about to expire.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { DescService } from '@bufbuild/protobuf';
import { timestampDate } from '@bufbuild/protobuf/wkt';
import { type Client, createClient, type Interceptor, type Transport } from '@connectrpc/connect';
import { createConnectTransport } from '@connectrpc/connect-node';
import { AuthService } from '@sluice/proto';
import { CliError, EXIT, usageError } from './cli-error.ts';
import { type CommandContext, stringFlag } from './command-table.ts';
import { loadSession, type Session, saveSession, stateDirectory } from './session.ts';

export const DEFAULT_CONTROL_PLANE = 'https://127.0.0.1:8443';
/** Refresh when the access token has less than this left. */
const REFRESH_MARGIN_MS = 60_000;

export interface Endpoint {
  url: string;
  caFile?: string;
}

/** `https://host:port` from a flag value; `host:port` alone means https. Plain http is refused. */
export function normalizeUrl(value: string): string {
  let text = value.trim().replace(/\/+$/, '');
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) text = `https://${text}`;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw usageError('--control-plane must be https://host:port');
  }
  if (url.protocol !== 'https:') throw usageError('--control-plane must use https:// (TLS 1.3 only)');
  return `https://${url.host}`;
}

export function transportFor(endpoint: Endpoint, interceptors: Interceptor[] = []): Transport {
  let ca: string | undefined;
  if (endpoint.caFile) {
    try {
      ca = readFileSync(endpoint.caFile, 'utf8');
    } catch (error) {
      throw usageError(
        `cannot read --ca-file ${endpoint.caFile} (${(error as NodeJS.ErrnoException).code ?? 'error'})`,
      );
    }
  }
  return createConnectTransport({
    baseUrl: endpoint.url,
    httpVersion: '2',
    nodeOptions: { minVersion: 'TLSv1.3', ...(ca && { ca }) },
    interceptors,
  });
}

export interface Connection {
  endpoint: Endpoint;
  stateDir: string;
  client<S extends DescService>(service: S): Client<S>;
}

/** Where the command points, before any session: flags and environment, else the default. */
export function endpointFromFlags(context: CommandContext, session?: Session): Endpoint {
  const flagUrl = stringFlag(context.flags, 'control-plane');
  const url = flagUrl ? normalizeUrl(flagUrl) : (session?.controlPlane ?? DEFAULT_CONTROL_PLANE);
  const caFlag = stringFlag(context.flags, 'ca-file');
  const caFile = caFlag ? path.resolve(caFlag) : session?.controlPlane === url ? session.caFile : undefined;
  return { url, ...(caFile && { caFile }) };
}

/** Clients for a logged-in user; exit code 3 when there is no usable session for the endpoint. */
export async function connect(context: CommandContext): Promise<Connection> {
  const stateDir = stateDirectory(stringFlag(context.flags, 'state-dir'), context.env);
  let session = await loadSession(stateDir);
  const endpoint = endpointFromFlags(context, session);
  if (!session || session.controlPlane !== endpoint.url)
    throw new CliError(`not logged in to ${endpoint.url}: run sluice login`, EXIT.auth);
  const anonymous = createClient(AuthService, transportFor(endpoint));
  let refreshing: Promise<void> | undefined;
  const ensureFresh = async () => {
    const current = session!;
    if (Date.parse(current.accessTokenExpiresAt) - Date.now() > REFRESH_MARGIN_MS) return;
    if (Date.parse(current.refreshTokenExpiresAt) <= Date.now())
      throw new CliError('session expired: run sluice login', EXIT.auth);
    // Another sluice process may have refreshed already; its tokens are in the file.
    const onDisk = await loadSession(stateDir);
    if (
      onDisk &&
      onDisk.controlPlane === current.controlPlane &&
      Date.parse(onDisk.accessTokenExpiresAt) - Date.now() > REFRESH_MARGIN_MS
    ) {
      session = onDisk;
      return;
    }
    const answer = await anonymous.refresh({ refreshToken: current.refreshToken });
    session = {
      ...current,
      accessToken: answer.accessToken,
      accessTokenExpiresAt: isoOf(answer.accessTokenExpiresAt),
      refreshToken: answer.refreshToken,
      refreshTokenExpiresAt: isoOf(answer.refreshTokenExpiresAt),
    };
    await saveSession(stateDir, session);
  };
  const auth: Interceptor = (next) => async (request) => {
    refreshing ??= ensureFresh().finally(() => {
      refreshing = undefined;
    });
    await refreshing;
    request.header.set('Authorization', `Bearer ${session!.accessToken}`);
    return next(request);
  };
  const transport = transportFor(endpoint, [auth]);
  return {
    endpoint,
    stateDir,
    client: (service) => createClient(service, transport),
  };
}

export function isoOf(timestamp: Parameters<typeof timestampDate>[0] | undefined): string {
  return timestamp ? timestampDate(timestamp).toISOString() : new Date(0).toISOString();
}
