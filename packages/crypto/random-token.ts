// Random identifiers and tokens (bootstrap tokens, session ids) and the digest under which tokens are stored.
import { createHash, randomBytes } from 'node:crypto';

/** A URL-safe random token of `bytes` random bytes (default 32 = 256 bits), base64url without padding. */
export function randomToken(bytes = 32): string {
  // Below 128 bits a token could be guessed or collide; above a few KiB it is a mistake, not a token.
  if (!Number.isInteger(bytes) || bytes < 16 || bytes > 4096) {
    throw new RangeError('randomToken needs an integer byte count between 16 and 4096');
  }
  return randomBytes(bytes).toString('base64url');
}

/** Lower-case hex SHA-256; strings are hashed as UTF-8. Tokens are stored as this digest, never in clear. */
export function sha256Hex(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}
