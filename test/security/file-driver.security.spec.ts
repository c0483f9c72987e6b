/** ASVS 12.3.1 (no user input in file paths without validation), OWASP Path Traversal; ASVS 3.2.3 via strict IDs. */
import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { FileDriver } from '../../lib/drivers/file.driver.js';
import { createTestApp, PLATFORMS, type TestApp } from '../support/test-app.js';
import { makeRecord } from '../support/records.js';

const TRAVERSALS = [
  '../../../../etc/passwd',
  'ml_sess_../../../../../../../../../../../../../../../../tmp/x',
  'ml_sess_' + '../'.repeat(14) + 'a',
  'ml_sess_%2e%2e%2f%2e%2e%2fetc%2fpasswd' + 'A'.repeat(12),
  'ml_sess_' + 'A'.repeat(42) + '\u0000',
  '/etc/shadow',
  'ml_sess_' + 'A'.repeat(41) + '..',
];

describe('path traversal against the File driver', () => {
  let root: string;
  let dir: string;
  beforeAll(() => {
    root = mkdtempSync(join(tmpdir(), 'ml-trav-'));
    dir = join(root, 'sessions');
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('every traversal-shaped ID is refused before any file-system call, and nothing is created outside the directory', async () => {
    const driver = new FileDriver({ path: dir });
    await driver.open();
    for (const id of TRAVERSALS) {
      await expect(driver.write(id, makeRecord())).rejects.toThrow();
      await expect(driver.read(id)).rejects.toThrow();
      await expect(driver.lock(id, { waitMs: 10, ttlMs: 100 })).rejects.toThrow();
      await expect(driver.destroy(id)).rejects.toThrow();
    }
    expect(readdirSync(root)).toEqual(['sessions']);
    expect(readdirSync(dir)).toEqual([]);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    await driver.close();
  });

  describe.each(PLATFORMS)('through HTTP (%s)', (platform) => {
    let t: TestApp;
    beforeAll(async () => {
      t = await createTestApp(platform, { driver: 'file', file: { path: dir } });
    });
    afterAll(() => t.close());

    it.each(TRAVERSALS.filter((id) => !id.includes('\u0000')))('cookie %j → a fresh session, no file outside the directory', async (id) => {
      const res = await request(t.server as never).post('/s/set').set('Cookie', `ML_SESS=${id}`).set('user-agent', 'ua').send({ a: 1 });
      expect(res.status).toBe(201);
      expect(String(res.headers['set-cookie'])).toMatch(/ML_SESS=ml_sess_[A-Za-z0-9_-]{43};/);
      expect(readdirSync(root)).toEqual(['sessions']);
    });
  });
});
