// The one place that defines Sluice's TLS policy: TLS 1.3 only, three AEAD suites. Every server option,
// every secure-context rotation and every client context is built from TLS_POLICY, so the policy can't
// drift between the first start and a certificate rotation.
import type { SecureServerOptions } from 'node:http2';
import { createSecureContext, type SecureContext, type SecureContextOptions } from 'node:tls';

/** The allowed TLS 1.3 suites, strongest first (the server's preference order). */
export const TLS_CIPHER_SUITES: readonly string[] = Object.freeze([
  'TLS_AES_256_GCM_SHA384',
  'TLS_CHACHA20_POLY1305_SHA256',
  'TLS_AES_128_GCM_SHA256',
]);

export const TLS_POLICY: {
  readonly minVersion: 'TLSv1.3';
  readonly maxVersion: 'TLSv1.3';
  readonly ciphers: string;
} = Object.freeze({
  minVersion: 'TLSv1.3',
  maxVersion: 'TLSv1.3',
  // Node takes TLS 1.3 suite names in `ciphers` too; with no TLS 1.2 names in the list, no TLS 1.2 suite is
  // offered even if the version bounds were ever lost.
  ciphers: TLS_CIPHER_SUITES.join(':'),
});

/** A PEM certificate (chain) and its private key; `caPem` is the CA that verifies client certificates. */
export interface TlsMaterial {
  certPem: string;
  keyPem: string;
  caPem?: string;
}

/**
 * Options for `http2.createSecureServer` / `https.createServer`. The client certificate is requested but not
 * required (`rejectUnauthorized: false`): workers register before they hold a certificate, so handlers must
 * check `socket.authorized` themselves for every call other than registration.
 */
export function serverTlsOptions(
  material: TlsMaterial,
  extra: { requestCert?: boolean; allowHTTP1?: boolean } = {},
): SecureServerOptions {
  return {
    ...rotationTlsOptions(material),
    requestCert: extra.requestCert ?? true,
    rejectUnauthorized: false,
    allowHTTP1: extra.allowHTTP1 ?? true,
  };
}

/**
 * What to pass to `server.setSecureContext()` when certificates rotate. Node rebuilds the context from these
 * options alone and falls back to its defaults (TLS 1.2 included) for anything missing, so the whole policy is
 * repeated here rather than only the new certificate.
 */
export function rotationTlsOptions(material: TlsMaterial): SecureContextOptions {
  return {
    ...TLS_POLICY,
    cert: material.certPem,
    key: material.keyPem,
    // Without `ca` Node verifies client certificates against its public root store, so any publicly issued
    // certificate would count as `authorized`. An empty list trusts nobody instead.
    ca: material.caPem ?? [],
  };
}

/**
 * A client context (grpc-js `createFromSecureContext`, https agents) that only speaks TLS 1.3, trusts `caPem`
 * alone and presents a client certificate when one is given.
 */
export function clientSecureContext(opts: {
  caPem: string;
  certPem?: string;
  keyPem?: string;
}): SecureContext {
  if ((opts.certPem === undefined) !== (opts.keyPem === undefined)) {
    throw new TypeError('clientSecureContext needs both certPem and keyPem, or neither');
  }
  const options: SecureContextOptions = { ...TLS_POLICY, ca: opts.caPem };
  if (opts.certPem !== undefined && opts.keyPem !== undefined) {
    options.cert = opts.certPem;
    options.key = opts.keyPem;
  }
  return createSecureContext(options);
}
