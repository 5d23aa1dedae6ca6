// Which worker client certificates the control plane refuses right after the TLS handshake, before any request
// is read: a superseded certificate (its worker has renewed since) or any certificate of a revoked worker.
// The check runs in the handshake path, so it is synchronous and reads only this in-memory cache:
//  - updated in-process when this control plane registers or renews a worker, or revokes one;
//  - refreshed from the catalog every REFRESH_MS (1 s) for changes made by another control plane sharing it.
//    The `sluice_work` NOTIFY channel is not reused: by design it fires only for work (jobs, tests, cleanups),
//    not for worker state or certificate changes. So another control plane's renewal or revocation reaches
//    this cache within about 1 s plus one query; until then the per-RPC check in WorkerService.authenticate
//    (which reads the worker's row on every call) still refuses it.
// A certificate this cache knows nothing about (a worker registered elsewhere a moment ago, a certificate without
// a worker identity) is let through to the per-RPC check: the cache only ever refuses, it never admits.
import type { PeerCertificate } from 'node:tls';
import { normaliseSerial } from '@sluice/crypto';
import type pg from 'pg';
import type { Logger } from 'pino';

export const REFRESH_MS = 1_000;

export type SerialRefusal = 'superseded' | 'revoked';

export interface WorkerSerials {
  /** Why this (TLS-verified) peer certificate must be refused, or undefined to let the connection through. */
  refusal(certificate: PeerCertificate): SerialRefusal | undefined;
  /** This control plane issued `serial` to `workerId` (registration or renewal): older serials are superseded. */
  issued(workerId: string, serial: string, notAfter: Date): void;
  /** This control plane saw `workerId` revoked: every certificate of it is refused. */
  revoked(workerId: string): void;
  /** Reloads every worker's current serial and state from the catalog. */
  refresh(pool: pg.Pool): Promise<void>;
}

interface Entry {
  serial: string;
  /** The current certificate's notAfter, in whole seconds (X.509 resolution). */
  expiresAtS: number;
  revoked: boolean;
  /** The local update generation that last wrote this entry (0: from the catalog). */
  generation: number;
}

export function createWorkerSerials(trustDomain: string): WorkerSerials {
  let workers = new Map<string, Entry>();
  /** Serials known superseded, with their notAfter (seconds): dropped once they expire, as TLS refuses them then. */
  const superseded = new Map<string, number>();
  let generation = 0;
  const prefix = `URI:spiffe://${trustDomain}/worker/`;

  const supersede = (entry: Entry | undefined, serial: string) => {
    if (entry?.serial && entry.serial !== serial) superseded.set(entry.serial, entry.expiresAtS);
  };

  return {
    refusal(certificate) {
      const serial = normaliseSerial(certificate.serialNumber ?? '');
      if (!serial) return undefined;
      if (superseded.has(serial)) return 'superseded';
      // Node's one-line SAN rendering; a worker certificate has exactly one SAN, its SPIFFE id.
      const san = certificate.subjectaltname ?? '';
      if (!san.startsWith(prefix) || san.includes(',')) return undefined;
      const entry = workers.get(san.slice(prefix.length));
      if (!entry) return undefined;
      if (entry.revoked) return 'revoked';
      if (!entry.serial || entry.serial === serial) return undefined;
      // Another serial than the current one that expires earlier was issued earlier: superseded. One that
      // expires later (or in the same second) may have been issued by another control plane since the last
      // refresh; the per-RPC check decides for it.
      const notAfterMs = Date.parse(certificate.valid_to ?? '');
      if (Number.isFinite(notAfterMs) && Math.floor(notAfterMs / 1000) < entry.expiresAtS)
        return 'superseded';
      return undefined;
    },

    issued(workerId, serial, notAfter) {
      const normalised = normaliseSerial(serial);
      const entry = workers.get(workerId);
      supersede(entry, normalised);
      generation += 1;
      workers.set(workerId, {
        serial: normalised,
        expiresAtS: Math.floor(notAfter.getTime() / 1000),
        revoked: entry?.revoked ?? false,
        generation,
      });
    },

    revoked(workerId) {
      const entry = workers.get(workerId);
      generation += 1;
      workers.set(workerId, {
        serial: entry?.serial ?? '',
        expiresAtS: entry?.expiresAtS ?? 0,
        revoked: true,
        generation,
      });
    },

    async refresh(pool) {
      // Local updates made while the query runs are newer than its answer: they are kept as they are.
      const since = generation;
      const { rows } = await pool.query<{
        id: string;
        cert_serial: string | null;
        cert_expires_at: Date | null;
        revoked: boolean;
      }>("select id, cert_serial, cert_expires_at, state = 'revoked' as revoked from workers");
      const next = new Map<string, Entry>();
      for (const [id, entry] of workers) if (entry.generation > since) next.set(id, entry);
      for (const row of rows) {
        const local = workers.get(row.id);
        if (local && local.generation > since) continue;
        const serial = normaliseSerial(row.cert_serial ?? '');
        supersede(local, serial);
        next.set(row.id, {
          serial,
          expiresAtS: row.cert_expires_at ? Math.floor(row.cert_expires_at.getTime() / 1000) : 0,
          // Revocation is final: a query that began before a local revocation committed doesn't undo it.
          revoked: row.revoked || (local?.revoked ?? false),
          generation: 0,
        });
      }
      workers = next;
      const nowS = Date.now() / 1000;
      for (const [serial, expiresAtS] of superseded) if (expiresAtS < nowS) superseded.delete(serial);
    },
  };
}

/** Loads the cache once, then refreshes it every REFRESH_MS until `shutdown` aborts. */
export async function keepWorkerSerialsFresh(
  serials: WorkerSerials,
  pool: pg.Pool,
  logger: Logger,
  shutdown: AbortSignal,
  intervalMs = REFRESH_MS,
): Promise<void> {
  await serials.refresh(pool);
  let failing = false;
  let running = false;
  const timer = setInterval(() => {
    if (running || shutdown.aborted) return;
    running = true;
    serials
      .refresh(pool)
      .then(() => {
        if (failing) logger.info('worker certificate serials refreshed again');
        failing = false;
      })
      .catch((error: unknown) => {
        if (!failing)
          logger.warn({ errorType: (error as Error).name }, 'worker certificate serials: refresh failed');
        failing = true;
      })
      .finally(() => {
        running = false;
      });
  }, intervalMs);
  timer.unref();
  shutdown.addEventListener('abort', () => clearInterval(timer), { once: true });
}
