import { create, toBinary } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { generateEnvelopeKeyPair, sealEnvelope, toSealedEnvelope } from '@sluice/crypto';
import { DatasourceSecretsSchema, FetchCredentialsResponseSchema, type SealedEnvelope } from '@sluice/proto';
import { describe, expect, it } from 'vitest';
import { openJobCredentials, receivedNow } from './credentials.ts';

const holder = { workerId: 'worker-a', jobId: 'job-1', epoch: 7n };
const canary = 'canary-pw-5f1c0e';

async function sealed(
  publicKey: Uint8Array,
  role: string,
  password: string,
  binding = holder,
): Promise<SealedEnvelope> {
  const secret = toBinary(DatasourceSecretsSchema, create(DatasourceSecretsSchema, { password }));
  const issuedAt = new Date();
  return {
    ...toSealedEnvelope(
      await sealEnvelope(publicKey, secret, {
        ...binding,
        expiresAt: new Date(issuedAt.getTime() + 60_000),
        role,
        datasourceId: `${role}-ds`,
      }),
    ),
    issuedAt: timestampFromDate(issuedAt),
  };
}

describe('opening job credentials', () => {
  it('opens the source and sink envelopes sealed to this worker, through the wire form', async () => {
    const keys = await generateEnvelopeKeyPair();
    const response = create(FetchCredentialsResponseSchema, {
      source: await sealed(keys.publicKey, 'source', `${canary}-source`),
      sink: await sealed(keys.publicKey, 'sink', `${canary}-sink`),
    });
    const credentials = await openJobCredentials(keys, response, holder, receivedNow());
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
    await expect(openJobCredentials(mine, response, holder, receivedNow())).rejects.toMatchObject({
      code: 'FOREIGN',
    });
  });

  it('refuses a sink envelope swapped into the source slot', async () => {
    const keys = await generateEnvelopeKeyPair();
    const response = create(FetchCredentialsResponseSchema, {
      source: await sealed(keys.publicKey, 'sink', canary),
      sink: await sealed(keys.publicKey, 'sink', canary),
    });
    await expect(openJobCredentials(keys, response, holder, receivedNow())).rejects.toMatchObject({
      code: 'REBOUND',
    });
  });

  it('refuses an envelope for an older epoch of the same job', async () => {
    const keys = await generateEnvelopeKeyPair();
    const response = create(FetchCredentialsResponseSchema, {
      source: await sealed(keys.publicKey, 'source', canary, { ...holder, epoch: 6n }),
      sink: await sealed(keys.publicKey, 'sink', canary, { ...holder, epoch: 6n }),
    });
    await expect(openJobCredentials(keys, response, holder, receivedNow())).rejects.toMatchObject({
      code: 'REBOUND',
    });
  });

  it('measures expiry from the server issue time by the monotonic clock, not the wall clock', async () => {
    const keys = await generateEnvelopeKeyPair();
    const response = create(FetchCredentialsResponseSchema, {
      source: await sealed(keys.publicKey, 'source', canary),
      sink: await sealed(keys.publicKey, 'sink', canary),
    });
    let monotonic = 1_000;
    const receipt = receivedNow(() => monotonic);
    // The wall clock is irrelevant: 59 s after receipt it opens, 61 s after it is EXPIRED.
    monotonic += 59_000;
    await expect(openJobCredentials(keys, response, holder, receipt)).resolves.toBeDefined();
    monotonic += 2_000;
    await expect(openJobCredentials(keys, response, holder, receipt)).rejects.toMatchObject({
      code: 'EXPIRED',
    });
    const undated = create(FetchCredentialsResponseSchema, {
      source: { ...response.source!, issuedAt: undefined },
      sink: response.sink!,
    });
    await expect(openJobCredentials(keys, undated, holder, receivedNow())).rejects.toMatchObject({
      code: 'MALFORMED',
    });
  });
});
