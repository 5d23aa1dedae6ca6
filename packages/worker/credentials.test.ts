import { create, toBinary } from '@bufbuild/protobuf';
import { generateEnvelopeKeyPair, sealEnvelope, toSealedEnvelope } from '@sluice/crypto';
import { DatasourceSecretsSchema, FetchCredentialsResponseSchema, type SealedEnvelope } from '@sluice/proto';
import { describe, expect, it } from 'vitest';
import { openJobCredentials } from './credentials.ts';

const holder = { workerId: 'worker-a', jobId: 'job-1', epoch: 7n };
const canary = 'canary-pw-5f1c0e';

async function sealed(
  publicKey: Uint8Array,
  role: string,
  password: string,
  binding = holder,
): Promise<SealedEnvelope> {
  const secret = toBinary(DatasourceSecretsSchema, create(DatasourceSecretsSchema, { password }));
  return toSealedEnvelope(
    await sealEnvelope(publicKey, secret, {
      ...binding,
      expiresAt: new Date(Date.now() + 60_000),
      role,
      datasourceId: `${role}-ds`,
    }),
  );
}

describe('opening job credentials', () => {
  it('opens the source and sink envelopes sealed to this worker, through the wire form', async () => {
    const keys = await generateEnvelopeKeyPair();
    const response = create(FetchCredentialsResponseSchema, {
      source: await sealed(keys.publicKey, 'source', `${canary}-source`),
      sink: await sealed(keys.publicKey, 'sink', `${canary}-sink`),
    });
    const credentials = await openJobCredentials(keys, response, holder);
    expect(credentials.source.use((s) => s.password)).toBe(`${canary}-source`);
    expect(credentials.sink.use((s) => s.password)).toBe(`${canary}-sink`);
    expect(JSON.stringify(credentials)).not.toContain(canary);
    expect(credentials.piiKey).toBeUndefined();
  });

  it('refuses envelopes sealed to another worker', async () => {
    const mine = await generateEnvelopeKeyPair();
    const theirs = await generateEnvelopeKeyPair();
    const response = create(FetchCredentialsResponseSchema, {
      source: await sealed(theirs.publicKey, 'source', canary, { ...holder, workerId: 'worker-b' }),
      sink: await sealed(theirs.publicKey, 'sink', canary, { ...holder, workerId: 'worker-b' }),
    });
    await expect(openJobCredentials(mine, response, holder)).rejects.toMatchObject({ code: 'FOREIGN' });
  });

  it('refuses a sink envelope swapped into the source slot', async () => {
    const keys = await generateEnvelopeKeyPair();
    const response = create(FetchCredentialsResponseSchema, {
      source: await sealed(keys.publicKey, 'sink', canary),
      sink: await sealed(keys.publicKey, 'sink', canary),
    });
    await expect(openJobCredentials(keys, response, holder)).rejects.toMatchObject({ code: 'REBOUND' });
  });

  it('refuses an envelope for an older epoch of the same job', async () => {
    const keys = await generateEnvelopeKeyPair();
    const response = create(FetchCredentialsResponseSchema, {
      source: await sealed(keys.publicKey, 'source', canary, { ...holder, epoch: 6n }),
      sink: await sealed(keys.publicKey, 'sink', canary, { ...holder, epoch: 6n }),
    });
    await expect(openJobCredentials(keys, response, holder)).rejects.toMatchObject({ code: 'REBOUND' });
  });
});
