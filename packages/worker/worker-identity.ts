// The worker's TLS identity: its id, client certificate and key. It may be kept on disk (0600) so a
// restarted process resumes without a new bootstrap token; the envelope key never is.
// It holds no trust anchor for the control plane: the worker always verifies the server against the CA it
// was configured with (SLUICE_CA_FILE), never against the internal CA that issued its client certificate —
// with an external server certificate that CA would not verify the server, and trusting it would widen the
// roots to whatever the server sent.
import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { timestampDate } from '@bufbuild/protobuf/wkt';
import type { RegisterResponse } from '@sluice/proto';

export interface WorkerIdentity {
  workerId: string;
  certPem: string;
  keyPem: string;
  /**
   * The control plane's internal CA that issued `certPem`, as the control plane sent it; informational
   * only, never used to verify the control plane's server certificate.
   */
  issuerCaPem: string;
  issuedAt: Date;
  expiresAt: Date;
}

export interface IdentityStore {
  /** The saved identity, or undefined when there is none or it has expired. */
  load(): Promise<WorkerIdentity | undefined>;
  save(identity: WorkerIdentity): Promise<void>;
}

export function identityFromRegistration(response: RegisterResponse, keyPem: string): WorkerIdentity {
  if (!response.workerId || !response.certificatePem || !response.certificateExpiresAt) {
    throw new Error('registration answer lacks a worker id or certificate');
  }
  return {
    workerId: response.workerId,
    certPem: response.certificatePem,
    keyPem,
    issuerCaPem: response.caCertificatePem,
    issuedAt: new Date(),
    expiresAt: timestampDate(response.certificateExpiresAt),
  };
}

/** Keeps the identity in memory only: every new process registers again. */
export function memoryIdentityStore(): IdentityStore {
  let saved: WorkerIdentity | undefined;
  return {
    load: async () => (saved && saved.expiresAt.getTime() > Date.now() ? saved : undefined),
    save: async (identity) => {
      saved = identity;
    },
  };
}

/** Keeps the identity in `<dir>/identity.json`, readable by the worker's user only. */
export function fileIdentityStore(dir: string): IdentityStore {
  const file = path.join(dir, 'identity.json');
  return {
    async load() {
      let text: string;
      try {
        text = await readFile(file, 'utf8');
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw new Error(`cannot read worker identity ${file}: ${(error as NodeJS.ErrnoException).code}`);
      }
      const raw = JSON.parse(text) as Record<string, string>;
      const identity: WorkerIdentity = {
        workerId: String(raw.workerId),
        certPem: String(raw.certPem),
        keyPem: String(raw.keyPem),
        // Files written before the trust fix named it caPem; it was the issuer then too.
        issuerCaPem: String(raw.issuerCaPem ?? raw.caPem ?? ''),
        issuedAt: new Date(String(raw.issuedAt)),
        expiresAt: new Date(String(raw.expiresAt)),
      };
      // An expired certificate can't authenticate; registering again needs a new token.
      return identity.expiresAt.getTime() > Date.now() ? identity : undefined;
    },
    async save(identity) {
      await mkdir(dir, { recursive: true, mode: 0o700 });
      const temporary = `${file}.${process.pid}.tmp`;
      await writeFile(temporary, JSON.stringify(identity), { mode: 0o600 });
      await chmod(temporary, 0o600);
      await rename(temporary, file);
    },
  };
}
