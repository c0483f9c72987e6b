import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { SESSION_ID_PREFIX } from '../contracts/session-id.js';

/** `ml_sess_` + 43 base64url characters: 32 bytes (256 bits) from the CSPRNG. */
export function generateSessionId(): string {
  return SESSION_ID_PREFIX + randomBytes(32).toString('base64url');
}

/** A CSRF token: 32 random bytes, base64url. */
export function generateToken(): string {
  return randomBytes(32).toString('base64url');
}

/** A short, non-reversible reference to a session ID for logs, events and browser-facing lists. */
export function sessionRef(id: string | null): string | null {
  return id === null ? null : createHash('sha256').update(id).digest('hex').slice(0, 12);
}

/** Constant-time string comparison that tolerates length mismatches and non-strings. */
export function safeEqual(a: unknown, b: unknown): boolean {
  if (typeof a !== 'string' || typeof b !== 'string') return false;
  // Hash both sides to equal-length digests so the comparison time does not leak the length.
  const ha = createHash('sha256').update(a).digest();
  const hb = createHash('sha256').update(b).digest();
  return timingSafeEqual(ha, hb) && a.length === b.length;
}
