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

/**
 * An error as a log line, with anything secret taken out: store clients often echo the key
 * (hence the session ID) or the arguments (a lock token) of a failed command.
 */
export function describeError(err: unknown, ...secrets: string[]): string {
  let text = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  for (const secret of secrets) if (secret) text = text.split(secret).join('[redacted]');
  return text.replace(/ml_sess_[A-Za-z0-9_-]{43}/g, (id) => `[session ${sessionRef(id)}]`);
}
