/** ASVS 6.2.1 (fail securely), 6.2.2 (vetted algorithms: AES-256-GCM), 6.2.5/6.2.6 (unique IVs), 6.4.1/6.4.2 (key management and rotation), 8.1.x (protect stored data). */
import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { EncryptedSerializer } from '../../lib/serializers/encrypted.serializer.js';
import { JsonSerializer } from '../../lib/serializers/json.serializer.js';
import { MemoryDriver } from '../../lib/drivers/memory.driver.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataSource } from 'typeorm';
import { createSessionsTableSql } from '../../migrations/create-sessions-table.migration.js';
import { dataSourceOptionsFromUrl } from '../../lib/drivers/database.driver.js';
import { createTestApp, PLATFORMS, type TestApp } from '../support/test-app.js';
import { makeRecord, newId } from '../support/records.js';

const keyA = randomBytes(32).toString('base64');
const keyB = randomBytes(32).toString('hex');
const payload = { data: { secret: 'card 4111', n: 1 }, flash: {} };

function flipBit(stored: string, at: number): string {
  const [p, kid, blob] = stored.split('.');
  const bytes = Buffer.from(blob, 'base64url');
  bytes[at % bytes.length] ^= 0x01;
  return `${p}.${kid}.${bytes.toString('base64url')}`;
}

describe('EncryptedSerializer', () => {
  const id = newId();
  const s = new EncryptedSerializer([keyA]);

  it('round-trips, hides the plaintext, and uses a fresh IV per write', () => {
    const one = s.serialize(payload, id);
    const two = s.serialize(payload, id);
    expect(one).not.toBe(two);
    expect(one).not.toMatch(/card|secret/);
    expect(s.deserialize(one, id)).toEqual(payload);
    const ivs = new Set(Array.from({ length: 1000 }, () => Buffer.from(s.serialize(payload, id).split('.')[2], 'base64url').subarray(0, 12).toString('hex')));
    expect(ivs.size).toBe(1000);
  });

  it('a flipped bit anywhere (IV, tag, ciphertext) fails', () => {
    const stored = s.serialize(payload, id);
    const len = Buffer.from(stored.split('.')[2], 'base64url').length;
    for (const at of [0, 5, 11, 12, 20, 27, 28, len - 1]) expect(() => s.deserialize(flipBit(stored, at), id)).toThrow();
  });

  it('truncation fails', () => {
    const stored = s.serialize(payload, id);
    expect(() => s.deserialize(stored.slice(0, -4), id)).toThrow();
    expect(() => s.deserialize(stored.slice(0, 30), id)).toThrow();
    expect(() => s.deserialize('enc2.00000000.', id)).toThrow(/truncated/);
  });

  it('a payload swapped into another session fails (the session ID is associated data)', () => {
    expect(() => s.deserialize(s.serialize(payload, id), newId())).toThrow();
  });

  it('the record\'s metadata is associated data too: any field changed, or a payload sealed without it, fails', () => {
    const meta = { ...makeRecord({ userId: 'mallory' }).meta, csrfToken: 'tok' };
    const stored = s.serialize(payload, id, meta);
    expect(s.deserialize(stored, id, { ...meta })).toEqual(payload);
    for (const edit of [{ userId: 'alice' }, { userId: null }, { expiresAt: meta.expiresAt + 1 }, { createdAt: meta.createdAt - 1 }, { lastActivity: meta.lastActivity + 1 }, { csrfToken: 'other' }, { ipAddress: '198.51.100.1' }, { userAgent: 'x' }]) {
      expect(() => s.deserialize(stored, id, { ...meta, ...edit })).toThrow();
    }
    // A payload sealed with the ID alone (a direct call) does not open as a record's payload.
    expect(() => s.deserialize(s.serialize(payload, id), id, meta)).toThrow();
    // The earlier format, sealed with the ID alone, is not read.
    expect(() => s.deserialize(s.serialize(payload, id).replace(/^enc2\./, 'enc1.'), id)).toThrow(/not encrypted with this serializer/);
  });

  it('key rotation: the first key encrypts, an old key still decrypts, a removed key does not', () => {
    const old = new EncryptedSerializer([keyA]);
    const rotated = new EncryptedSerializer([keyB, keyA]);
    const storedOld = old.serialize(payload, id);
    expect(rotated.deserialize(storedOld, id)).toEqual(payload);
    const storedNew = rotated.serialize(payload, id);
    expect(storedNew.split('.')[1]).not.toBe(storedOld.split('.')[1]);
    expect(() => old.deserialize(storedNew, id)).toThrow(/not in the key ring/);
    expect(() => new EncryptedSerializer([keyB]).deserialize(storedOld, id)).toThrow();
  });

  it('a wrapped serializer gets the session ID and the metadata too, as it would unencrypted', () => {
    const seen: unknown[][] = [];
    const inner = {
      serialize: (p: typeof payload, sid: string, meta?: unknown) => (seen.push(['serialize', sid, meta]), JSON.stringify(p)),
      deserialize: (text: string, sid: string, meta?: unknown) => (seen.push(['deserialize', sid, meta]), JSON.parse(text) as typeof payload),
    };
    const meta = makeRecord().meta;
    const wrapped = new EncryptedSerializer([keyA], inner);
    expect(wrapped.deserialize(wrapped.serialize(payload, id, meta), id, meta)).toEqual(payload);
    expect(seen).toEqual([
      ['serialize', id, meta],
      ['deserialize', id, meta],
    ]);
  });

  it('plaintext JSON is not accepted as an encrypted payload', () => {
    expect(() => s.deserialize(new JsonSerializer().serialize(payload), id)).toThrow();
  });

  it.each([
    ['too short', randomBytes(16).toString('base64')],
    ['too long', randomBytes(33).toString('hex')],
    ['not base64 or hex', 'this is not a key!'],
  ])('a bad key (%s) is refused with a clear error', (_l, k) => {
    expect(() => new EncryptedSerializer([k])).toThrow(/32|base64/);
  });
});

describe.each(PLATFORMS)('encrypted sessions end to end (%s)', (platform) => {
  let t: TestApp;
  const driver = new MemoryDriver();
  beforeAll(async () => {
    t = await createTestApp(platform, { driver, encryption: { keys: [keyA] } });
  });
  afterAll(() => t.close());

  it('stores ciphertext; a tampered record → a fresh session, never an error response', async () => {
    const b = t.browser();
    await b.post('/s/set', { secret: 'card 4111' });
    const id = b.sessionId!;
    const record = (await driver.read(id))!;
    expect(record.payload.startsWith('enc2.')).toBe(true);
    expect(record.payload).not.toMatch(/card/);
    expect((await b.get('/s/get')).body.data.secret).toBe('card 4111');
    await driver.write(id, { ...record, payload: flipBit(record.payload, 30) });
    const res = await b.get('/s/get');
    expect(res.status).toBe(200);
    expect(res.body.data).toEqual({});
  });

  it('a record copied from another session → a fresh session', async () => {
    const alice = t.browser();
    const mallory = t.browser();
    await alice.post('/s/set', { role: 'admin' });
    await mallory.post('/s/set', { role: 'user' });
    const aliceRecord = (await driver.read(alice.sessionId!))!;
    await driver.write(mallory.sessionId!, aliceRecord);
    expect((await mallory.get('/s/get')).body.data).toEqual({});
  });

  it.each([
    ['userId', { userId: 'alice' }],
    ['expiresAt', { expiresAt: Date.now() + 10 * 365 * 86_400_000 }],
    ['createdAt', { createdAt: Date.now() + 60_000 }],
    ['lastActivity', { lastActivity: Date.now() + 60_000 }],
    ['csrfToken', { csrfToken: 'chosen-by-mallory' }],
    ['userAgent', { userAgent: 'another browser' }],
    ['ipAddress', { ipAddress: '203.0.113.9' }],
  ])('metadata edited in the store without the key (%s) → a fresh session, the payload not served', async (_field, edit) => {
    const mallory = t.browser();
    await mallory.post('/s/login', { userId: 'mallory' });
    await mallory.post('/s/set', { mine: 'yes' });
    expect((await mallory.get('/s/get')).body).toMatchObject({ userId: 'mallory', data: { mine: 'yes' } });
    const record = (await driver.read(mallory.sessionId!))!;
    await driver.write(mallory.sessionId!, { ...record, meta: { ...record.meta, ...edit } });
    const res = await mallory.get('/s/get');
    expect(res.status).toBe(200);
    expect(res.body.userId).toBeNull();
    expect(res.body.data).toEqual({});
  });

  it('a bad key fails start-up with a message naming the option', async () => {
    await expect(createTestApp(platform, { encryption: { keys: ['short'] } })).rejects.toThrow(/encryption\.keys\[0\]/);
  });
});

describe.each(PLATFORMS)('key rotation end to end (%s)', (platform) => {
  it('a session written under the old key is read after rotation and re-encrypted with the new key on its next write', async () => {
    const driver = new MemoryDriver();
    const before = await createTestApp(platform, { driver, encryption: { keys: [keyA] } });
    const b = before.browser();
    await b.post('/s/set', { kept: 'yes' });
    const id = b.sessionId!;
    const oldKid = (await driver.read(id))!.payload.split('.')[1];
    await before.close();
    const after = await createTestApp(platform, { driver, encryption: { keys: [keyB, keyA] } });
    try {
      const b2 = after.browser();
      b2.cookie = b.cookie;
      expect((await b2.get('/s/get')).body.data.kept).toBe('yes');
      await b2.post('/s/set', { more: 1 });
      expect((await driver.read(id))!.payload.split('.')[1]).not.toBe(oldKid);
    } finally {
      await after.close();
    }
  });
});

describe('encrypted sessions on a store that keeps whole milliseconds', () => {
  it('a fractional absoluteTimeout (3600 / 7 s) does not make every session unopenable on the database driver', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ml-enc-sqlite-'));
    const url = `sqlite:${join(dir, 'sessions.sqlite')}`;
    const ds = new DataSource(dataSourceOptionsFromUrl(url));
    await ds.initialize();
    for (const sql of createSessionsTableSql('sqlite', 'sessions')) await ds.query(sql);
    await ds.destroy();
    const t = await createTestApp('express', { driver: 'database', database: { url }, absoluteTimeout: 3600 / 7, encryption: { keys: [keyA] } });
    try {
      const b = t.browser();
      await b.post('/s/login', { userId: 'u1' });
      await b.post('/s/set', { kept: 'yes' });
      const res = await b.get('/s/get');
      expect(res.body).toMatchObject({ userId: 'u1', data: { kept: 'yes' } });
    } finally {
      await t.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
