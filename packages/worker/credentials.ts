// Opens a job's sealed credentials, in memory, at the moment a connection needs them. The envelope's
// plaintext buffer is wiped as soon as it is parsed; what remains are the strings `pg` and `mysql2` insist
// on, held inside `Secret` so they cannot reach a log.
//
// Expiry never trusts this machine's wall clock, which an attacker (or a bad NTP day) can set back: each
// envelope carries the control plane's `issued_at`, and the worker reckons the server's time as
// issued_at + (monotonic now - monotonic at receipt). An envelope kept past its TTL by that measure is EXPIRED
// whatever Date.now() says. (Enforcing single use at FetchCredentials would not help: the envelope is already
// on the worker; what matters is how long the worker may keep opening it.) Transit time is not counted, so
// the worker's measure is at most one network delay more lenient than the server's.
import { performance } from 'node:perf_hooks';
import { fromBinary } from '@bufbuild/protobuf';
import { timestampDate } from '@bufbuild/protobuf/wkt';
import { EnvelopeError, type EnvelopeKeyPair, openEnvelope, Secret, toEnvelope, wipe } from '@sluice/crypto';
import {
  type DatasourceSecrets,
  DatasourceSecretsSchema,
  type FetchCredentialsResponse,
  type SealedEnvelope,
} from '@sluice/proto';

export interface JobCredentials {
  source: Secret<DatasourceSecrets>;
  sink: Secret<DatasourceSecrets>;
  piiKey?: Secret<DatasourceSecrets>;
}

export interface Holder {
  workerId: string;
  jobId: string;
  epoch: bigint;
}

/** When a response carrying envelopes arrived, by a monotonic clock (never the wall clock). */
export interface Receipt {
  /** `clock()` when the response arrived. */
  atMs: number;
  /** The monotonic clock (default performance.now); injectable for tests. */
  clock?: () => number;
}

/** A receipt for a response that arrived just now. */
export function receivedNow(clock: () => number = () => performance.now()): Receipt {
  return { atMs: clock(), clock };
}

/** The control plane's time now, estimated from the envelope's issue time and the monotonic clock. */
export function serverNow(sealed: SealedEnvelope, receipt: Receipt): number {
  if (!sealed.issuedAt) throw new EnvelopeError('MALFORMED', 'the envelope carries no issue time');
  const elapsed = (receipt.clock ?? (() => performance.now()))() - receipt.atMs;
  return timestampDate(sealed.issuedAt).getTime() + Math.max(0, elapsed);
}

/** Opens every envelope of a FetchCredentials response; refuses any not bound to `holder`. */
export async function openJobCredentials(
  keys: EnvelopeKeyPair,
  response: FetchCredentialsResponse,
  holder: Holder,
  receipt: Receipt,
): Promise<JobCredentials> {
  if (!response.source || !response.sink)
    throw new Error('control plane returned no source or sink credentials');
  const credentials: JobCredentials = {
    source: await openDatasourceSecrets(keys, response.source, holder, 'source', receipt),
    sink: await openDatasourceSecrets(keys, response.sink, holder, 'sink', receipt),
  };
  if (response.piiKey)
    credentials.piiKey = await openDatasourceSecrets(keys, response.piiKey, holder, 'pii_key', receipt);
  return credentials;
}

export async function openDatasourceSecrets(
  keys: EnvelopeKeyPair,
  sealed: SealedEnvelope,
  holder: Holder,
  role: 'source' | 'sink' | 'pii_key',
  receipt: Receipt,
): Promise<Secret<DatasourceSecrets>> {
  // A sink envelope swapped into the source slot is refused: the role is part of what was authenticated.
  const plaintext = await openEnvelope(keys.privateKey, toEnvelope(sealed), {
    ...holder,
    role,
    now: serverNow(sealed, receipt),
  });
  try {
    return Secret.of(fromBinary(DatasourceSecretsSchema, plaintext));
  } finally {
    wipe(plaintext);
  }
}
