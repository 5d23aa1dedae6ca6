// Maps the wire form of a sealed envelope (proto `SealedEnvelope`) to @sluice/crypto's `Envelope` and back.
// The binding's role travels as the proto enum but is authenticated as a stable lowercase name, so the
// HPKE `info` never depends on enum numbering.
import { create } from '@bufbuild/protobuf';
import { timestampDate, timestampFromDate } from '@bufbuild/protobuf/wkt';
import { CredentialRole, type SealedEnvelope, SealedEnvelopeSchema } from '@sluice/proto';
import type { Envelope } from './envelope.ts';

const roleNames = new Map<CredentialRole, string>([
  [CredentialRole.SOURCE, 'source'],
  [CredentialRole.SINK, 'sink'],
  [CredentialRole.PII_KEY, 'pii_key'],
  [CredentialRole.ENVELOPE_KEY_CHALLENGE, 'envelope_key_challenge'],
]);

export function credentialRoleName(role: CredentialRole): string {
  const name = roleNames.get(role);
  if (!name) throw new RangeError(`unknown credential role ${role}`);
  return name;
}

export function credentialRoleFromName(name: string): CredentialRole {
  for (const [role, roleName] of roleNames) if (roleName === name) return role;
  throw new RangeError(`unknown credential role ${JSON.stringify(name.slice(0, 20))}`);
}

export function toEnvelope(sealed: SealedEnvelope): Envelope {
  const binding = sealed.binding;
  if (sealed.version !== 1) throw new RangeError(`unsupported envelope version ${sealed.version}`);
  if (!binding?.expiresAt) throw new RangeError('sealed envelope has no binding or expiry');
  return {
    version: 1,
    binding: {
      workerId: binding.workerId,
      jobId: binding.jobId,
      epoch: binding.epoch,
      expiresAt: timestampDate(binding.expiresAt),
      role: credentialRoleName(binding.role),
      datasourceId: binding.datasourceId,
    },
    encapsulatedKey: sealed.encapsulatedKey,
    ciphertext: sealed.ciphertext,
  };
}

export function toSealedEnvelope(envelope: Envelope): SealedEnvelope {
  const { binding } = envelope;
  return create(SealedEnvelopeSchema, {
    version: envelope.version,
    binding: {
      workerId: binding.workerId,
      jobId: binding.jobId,
      epoch: binding.epoch,
      expiresAt: timestampFromDate(binding.expiresAt),
      role: credentialRoleFromName(binding.role),
      datasourceId: binding.datasourceId,
    },
    encapsulatedKey: envelope.encapsulatedKey,
    ciphertext: envelope.ciphertext,
  });
}
