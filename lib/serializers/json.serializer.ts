import type { SessionPayload, SessionSerializer } from '../contracts/session-serializer.interface.js';

/** The default serializer: plain JSON. Anything that does not parse to an object is rejected. */
export class JsonSerializer implements SessionSerializer {
  serialize(payload: SessionPayload): string {
    return JSON.stringify(payload);
  }

  deserialize(stored: string): SessionPayload {
    const value: unknown = JSON.parse(stored);
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw new TypeError('Stored session payload is not a JSON object.');
    }
    return value as SessionPayload;
  }
}
