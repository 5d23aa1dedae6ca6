// @sluice/crypto: the secrets core shared by the control plane, the workers and the CLI.

export {
  type Envelope,
  type EnvelopeBinding,
  EnvelopeError,
  type EnvelopeErrorCode,
  type EnvelopeKeyPair,
  envelopeKeyRotationMessage,
  generateEnvelopeKeyPair,
  normaliseSerial,
  openEnvelope,
  sealEnvelope,
} from './envelope.ts';
export {
  credentialRoleFromName,
  credentialRoleName,
  toEnvelope,
  toSealedEnvelope,
} from './envelope-codec.ts';
export {
  createKeyring,
  generateEncryptionKey,
  type Keyring,
  KeyringError,
  type KeyringErrorCode,
  loadKeyring,
  type RecordIdentity,
} from './keyring.ts';
export { createLogger, LOG_REDACT_PATHS, loggerOptions } from './logger-options.ts';
export { hashPii, hmacPii, normalizePii } from './pii.ts';
export {
  type CertificateAuthority,
  createCertificateAuthority,
  createWorkerCsr,
  loadCertificateAuthority,
  PkiError,
  type PkiErrorCode,
  workerIdFromCertificate,
} from './pki.ts';
export { randomToken, sha256Hex } from './random-token.ts';
export { scrubSecrets } from './scrub-secrets.ts';
export { Secret, wipe } from './secret.ts';
export {
  clientSecureContext,
  rotationTlsOptions,
  serverTlsOptions,
  TLS_CIPHER_SUITES,
  TLS_POLICY,
  type TlsMaterial,
} from './tls.ts';
