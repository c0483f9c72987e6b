import { randomUUID } from 'node:crypto';

/**
 * The one definition of a well-formed session ID: `ml_sess_` + 43 base64url characters
 * (32 random bytes). Every layer checks IDs against it before they reach storage, a file path or a lock name.
 */
export const SESSION_ID_PREFIX = 'ml_sess_';
export const SESSION_ID_LENGTH = SESSION_ID_PREFIX.length + 43;
export const SESSION_ID_PATTERN = /^ml_sess_[A-Za-z0-9_-]{43}$/;

export function isValidSessionId(id: unknown): id is string {
  return typeof id === 'string' && id.length === SESSION_ID_LENGTH && SESSION_ID_PATTERN.test(id);
}

/**
 * A lock token: 122 random bits from `randomUUID()`, which draws from a cached entropy pool and is
 * far cheaper per call than `randomBytes()` on this once-per-request path. Only needs to be unique,
 * so it is used as it comes (36 characters, dashes included).
 */
export function newLockToken(): string {
  return randomUUID();
}
