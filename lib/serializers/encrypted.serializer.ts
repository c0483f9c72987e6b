import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import type { SessionMeta } from '../contracts/session-record.interface.js';
import type { SessionPayload, SessionSerializer } from '../contracts/session-serializer.interface.js';
import { JsonSerializer } from './json.serializer.js';
import { parseKey } from '../contracts/encryption-key.js';

const PREFIX = 'enc2';
const IV_BYTES = 12;
const TAG_BYTES = 16;

interface Key {
  id: string;
  secret: Buffer;
}

/**
 * AES-256-GCM around another serializer. A fresh 12-byte IV per write. The associated data is
 * the session ID and the record's metadata (user ID, timestamps, fingerprint, CSRF token), so a
 * payload copied into another session's record, or a record whose metadata was edited in the
 * store, fails to decrypt: metadata stays readable (expiry, GC and sessions by user need it) but
 * cannot be changed without the key.
 * Key ring: the first key encrypts, every key decrypts (rotation: put the new key first, keep
 * the old ones until their sessions have been rewritten or expired).
 *
 * Stored form: `enc2.<key id>.<base64url(iv | tag | ciphertext)>`; the key id is 8 hex chars of
 * SHA-256(key), so nothing about the key itself is revealed. (`enc1`, sealed with the ID alone,
 * is not read: its metadata could have been changed unnoticed.)
 */
export class EncryptedSerializer implements SessionSerializer {
  private readonly keys: Key[];

  constructor(
    keys: Array<string | Buffer>,
    private readonly inner: SessionSerializer = new JsonSerializer(),
  ) {
    if (keys.length === 0) throw new Error('EncryptedSerializer needs at least one key.');
    this.keys = keys.map((k, i) => {
      const secret = typeof k === 'string' ? parseKey(k, `encryption.keys[${i}]`) : k;
      if (secret.length !== 32) throw new Error(`encryption.keys[${i}] must be exactly 32 bytes.`);
      return { id: createHash('sha256').update(secret).digest('hex').slice(0, 8), secret };
    });
  }

  serialize(payload: SessionPayload, id: string, meta?: SessionMeta): string {
    const plain = Buffer.from(this.inner.serialize(payload, id, meta), 'utf8');
    const key = this.keys[0];
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', key.secret, iv, { authTagLength: TAG_BYTES });
    cipher.setAAD(associatedData(id, meta));
    const body = Buffer.concat([cipher.update(plain), cipher.final()]);
    return `${PREFIX}.${key.id}.${Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64url')}`;
  }

  deserialize(stored: string, id: string, meta?: SessionMeta): SessionPayload {
    const parts = stored.split('.');
    if (parts.length !== 3 || parts[0] !== PREFIX) throw new Error('Stored session payload is not encrypted with this serializer.');
    const blob = Buffer.from(parts[2], 'base64url');
    if (blob.length < IV_BYTES + TAG_BYTES) throw new Error('Encrypted session payload is truncated.');
    const key = this.keys.find((k) => k.id === parts[1]);
    if (!key) throw new Error('Encrypted session payload uses a key that is not in the key ring.');
    const decipher = createDecipheriv('aes-256-gcm', key.secret, blob.subarray(0, IV_BYTES), { authTagLength: TAG_BYTES });
    decipher.setAAD(associatedData(id, meta));
    decipher.setAuthTag(blob.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
    // final() throws on any tampering, truncation, wrong session ID or changed metadata: the manager starts a fresh session.
    const plain = Buffer.concat([decipher.update(blob.subarray(IV_BYTES + TAG_BYTES)), decipher.final()]);
    return this.inner.deserialize(plain.toString('utf8'), id, meta);
  }
}

/**
 * The ID and every metadata field, in a fixed order. Each field is normalized (missing → null,
 * times as whole milliseconds) so that a driver's faithful round trip of the metadata reproduces
 * it exactly. Without `meta` (a direct call) the ID alone: such a payload does not open with meta.
 */
function associatedData(id: string, meta: SessionMeta | undefined): Buffer {
  if (meta === undefined) return Buffer.from(id, 'utf8');
  // Whole milliseconds: stores with BIGINT columns keep no fraction (a timeout of 3600 / 7 s).
  const num = (v: unknown): number | null => (v === null || v === undefined ? null : Math.round(Number(v)));
  const str = (v: unknown): string | null => (v === null || v === undefined ? null : String(v));
  const fields = [
    num(meta.createdAt),
    num(meta.lastActivity),
    num(meta.expiresAt),
    str(meta.userId),
    str(meta.ipAddress),
    str(meta.userAgent),
    str(meta.csrfToken),
  ];
  return Buffer.from(`${id}\n${JSON.stringify(fields)}`, 'utf8');
}
