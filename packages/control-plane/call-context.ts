// What handlers know about a call beyond its message, carried in Connect context values: the TLS peer (set
// by the server from the socket), the authenticated user (set by the auth interceptor) and what the audit
// trail should name (filled in by handlers, written by the interceptor).
import type { PeerCertificate } from 'node:tls';
import { createContextKey } from '@connectrpc/connect';

export type RoleName = 'admin' | 'operator' | 'viewer';

export interface CallPeer {
  /** The client's IP address as the socket sees it. */
  remoteAddress: string;
  /** The client certificate, when one was presented (empty object otherwise, as node returns it). */
  peerCertificate: PeerCertificate | undefined;
  /** The client certificate chains to the configured client CA. */
  authorized: boolean;
  /** Negotiated TLS version, e.g. `TLSv1.3`. */
  tlsProtocol: string | null;
}

export interface Caller {
  userId: string;
  username: string;
  role: RoleName;
}

/** Mutable per-call notes for the audit row. */
export interface AuditNote {
  userId?: string;
  workerId?: string;
  resourceId?: string;
}

export const peerKey = createContextKey<CallPeer>({
  remoteAddress: '',
  peerCertificate: undefined,
  authorized: false,
  tlsProtocol: null,
});

export const callerKey = createContextKey<Caller | undefined>(undefined, { description: 'caller' });

export const auditNoteKey = createContextKey<AuditNote | undefined>(undefined, { description: 'audit note' });
