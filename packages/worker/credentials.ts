// Opens a job's sealed credentials, in memory, at the moment a connection needs them. The envelope's
// plaintext buffer is wiped as soon as it is parsed; what remains are the strings `pg` and `mysql2` insist
// on, held inside `Secret` so they cannot reach a log.
import { fromBinary } from '@bufbuild/protobuf';
import { type EnvelopeKeyPair, openEnvelope, Secret, toEnvelope, wipe } from '@sluice/crypto';
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

/** Opens every envelope of a FetchCredentials response; refuses any not bound to `holder`. */
export async function openJobCredentials(
  keys: EnvelopeKeyPair,
  response: FetchCredentialsResponse,
  holder: Holder,
): Promise<JobCredentials> {
  if (!response.source || !response.sink)
    throw new Error('control plane returned no source or sink credentials');
  const credentials: JobCredentials = {
    source: await openDatasourceSecrets(keys, response.source, holder, 'source'),
    sink: await openDatasourceSecrets(keys, response.sink, holder, 'sink'),
  };
  if (response.piiKey)
    credentials.piiKey = await openDatasourceSecrets(keys, response.piiKey, holder, 'pii_key');
  return credentials;
}

export async function openDatasourceSecrets(
  keys: EnvelopeKeyPair,
  sealed: SealedEnvelope,
  holder: Holder,
  role: 'source' | 'sink' | 'pii_key',
): Promise<Secret<DatasourceSecrets>> {
  // A sink envelope swapped into the source slot is refused: the role is part of what was authenticated.
  const plaintext = await openEnvelope(keys.privateKey, toEnvelope(sealed), { ...holder, role });
  try {
    return Secret.of(fromBinary(DatasourceSecretsSchema, plaintext));
  } finally {
    wipe(plaintext);
  }
}
