import { execFileSync } from 'node:child_process';
import { create, fromBinary, fromJson, toBinary, toJson } from '@bufbuild/protobuf';
import { describe, expect, it } from 'vitest';
import {
  CredentialRole,
  health,
  JobLeaseSchema,
  PullJobResponseSchema,
  SealedEnvelopeSchema,
  SslMode,
  WorkerService,
} from './index.ts';

describe('the sluice.v1 protocol', () => {
  it('defines every worker RPC the design names', () => {
    expect(Object.keys(WorkerService.method).sort()).toEqual(
      [
        'beginEnvelopeKeyRotation',
        'completeConnectionTest',
        'completeReplicationCleanup',
        'fetchCredentials',
        'heartbeat',
        'pullJob',
        'register',
        'renewCertificate',
        'reportProgress',
        'rotateEnvelopeKey',
      ].sort(),
    );
    expect(health.Health.typeName).toBe('grpc.health.v1.Health');
  });

  it('round-trips a job lease through binary and JSON without losing 64-bit epochs', () => {
    const lease = create(PullJobResponseSchema, {
      work: {
        case: 'lease',
        value: create(JobLeaseSchema, { jobId: 'j1', epoch: 2n ** 60n + 1n }),
      },
    });
    const binary = fromBinary(PullJobResponseSchema, toBinary(PullJobResponseSchema, lease));
    expect(binary.work.case === 'lease' && binary.work.value.epoch).toBe(2n ** 60n + 1n);
    const json = toJson(PullJobResponseSchema, lease);
    expect(json).toEqual({ lease: { jobId: 'j1', epoch: '1152921504606846977' } });
    expect(fromJson(PullJobResponseSchema, json)).toEqual(lease);
  });

  it('keeps envelope bytes and enum names stable on the wire', () => {
    const envelope = create(SealedEnvelopeSchema, {
      version: 1,
      binding: { workerId: 'w', jobId: 'j', epoch: 3n, role: CredentialRole.SINK },
      encapsulatedKey: new Uint8Array([1, 2, 3]),
    });
    expect(toJson(SealedEnvelopeSchema, envelope)).toEqual({
      version: 1,
      binding: { workerId: 'w', jobId: 'j', epoch: '3', role: 'CREDENTIAL_ROLE_SINK' },
      encapsulatedKey: 'AQID',
    });
    expect(SslMode.VERIFY_FULL).toBe(6);
  });

  it('loads under plain Node type stripping, with no build step', () => {
    const out = execFileSync(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        "import('@sluice/proto').then((m) => console.log(m.WorkerService.typeName))",
      ],
      { encoding: 'utf8' },
    );
    expect(out.trim()).toBe('sluice.v1.WorkerService');
  });
});
