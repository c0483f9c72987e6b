/**
 * The one definition of an encryption key's text form, shared by the option check (core) and the
 * EncryptedSerializer: 32 bytes as 64 hex characters or base64/base64url. Anything else throws,
 * naming the key, so that start-up fails with a message that says how to make one.
 */
export function parseKey(text: string, name = 'key'): Buffer {
  const t = text.trim();
  if (/^[0-9a-fA-F]{64}$/.test(t)) return Buffer.from(t, 'hex');
  if (/^[A-Za-z0-9+/_-]+={0,2}$/.test(t)) {
    const b = Buffer.from(t.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
    if (b.length === 32) return b;
    throw new Error(`${name} decodes to ${b.length} bytes; it must be exactly 32 (e.g. \`openssl rand -base64 32\`).`);
  }
  throw new Error(`${name} is neither 64 hex characters nor base64 (e.g. \`openssl rand -base64 32\`).`);
}
