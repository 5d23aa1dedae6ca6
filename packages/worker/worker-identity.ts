// The worker's TLS identity: its id, client certificate and key. It may be kept on disk (0600) so a
// restarted process resumes without a new bootstrap token; the envelope key never is.
import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { timestampDate } from '@bufbuild/protobuf/wkt';
import type { RegisterResponse } from '@sluice/proto';

export interface WorkerIdentity {
  workerId: string;
  certPem: string;
  keyPem: string;
  /** The CA the control plane's certificate chains to. */
  caPem: string;
  issuedAt: Date;
  expiresAt: Date;
}

export interface IdentityStore {
  /** The saved identity, or undefined when there is none or it has expired. */
  load(): Promise<WorkerIdentity | undefined>;
  save(identity: WorkerIdentity): Promise<void>;
}

export function identityFromRegistration(
  response: RegisterResponse,
  keyPem: string,
  caPem: string,
): WorkerIdentity {
  if (!response.workerId || !response.certificatePem || !response.certificateExpiresAt) {
    throw new Error('registration answer lacks a worker id or certificate');
  }
  return {
    workerId: response.workerId,
    certPem: response.certificatePem,
    keyPem,
    caPem: response.caCertificatePem || caPem,
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
        caPem: String(raw.caPem),
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
