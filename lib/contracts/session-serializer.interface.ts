/** The payload as the serializer sees it: JSON-compatible session data plus flash bookkeeping. */
export type SessionPayload = Record<string, unknown>;

/**
 * Turns the payload into the string a driver stores, and back. `id` is the session ID the
 * payload belongs to (the `EncryptedSerializer` binds ciphertext to it).
 * `deserialize` throws on anything it cannot trust; the manager then starts a fresh session.
 */
export interface SessionSerializer {
  serialize(payload: SessionPayload, id: string): string;
  deserialize(stored: string, id: string): SessionPayload;
}

/** Injection token of the configured serializer. */
export const SessionSerializer: unique symbol = Symbol('SessionSerializer');
