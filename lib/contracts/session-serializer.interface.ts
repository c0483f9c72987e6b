import type { SessionMeta } from './session-record.interface.js';

/** The payload as the serializer sees it: JSON-compatible session data plus flash bookkeeping. */
export type SessionPayload = Record<string, unknown>;

/**
 * Turns the payload into the string a driver stores, and back. `id` is the session ID the
 * payload belongs to, and `meta` the metadata stored beside it in the same record (the manager
 * always passes both; the `EncryptedSerializer` binds its ciphertext to them, so neither can be
 * changed in the store without the key). `deserialize` throws on anything it cannot trust; the
 * manager then starts a fresh session.
 */
export interface SessionSerializer {
  serialize(payload: SessionPayload, id: string, meta?: SessionMeta): string;
  deserialize(stored: string, id: string, meta?: SessionMeta): SessionPayload;
}

/** Injection token of the configured serializer. */
export const SessionSerializer: unique symbol = Symbol('SessionSerializer');
