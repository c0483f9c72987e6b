/**
 * A hot session through the whole module on every real store: concurrent read-modify-write
 * requests of one session in one process queue locally, and (drivers with extend()) each holder
 * hands the store lock and the fresh record to the next one instead of unlocking. Nothing may be
 * lost, and the store lock must be free afterwards.
 */
import { describe, it, expect } from '@jest/globals';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { DataSource } from 'typeorm';
import { Redis } from 'ioredis';
import { createSessionsTableSql, dropSessionsTableSql, type SessionsTableDialect } from '../../migrations/create-sessions-table.migration.js';
import { dataSourceOptionsFromUrl } from '../../lib/drivers/database.driver.js';
import type { SessionModuleOptions } from '../../lib/contracts/session-options.interface.js';
import { createTestApp } from '../support/test-app.js';

interface Store {
  options: SessionModuleOptions;
  cleanup(): Promise<void>;
}

async function databaseStore(dialect: SessionsTableDialect, url: string, dir?: string): Promise<Store> {
  const table = `hot_${randomBytes(4).toString('hex')}`;
  const ds = new DataSource(dataSourceOptionsFromUrl(url));
  await ds.initialize();
  for (const sql of createSessionsTableSql(dialect, table)) await ds.query(sql);
  return {
    options: { driver: 'database', database: { url, table } },
    cleanup: async () => {
      for (const sql of dropSessionsTableSql(dialect, table)) await ds.query(sql).catch(() => undefined);
      await ds.destroy();
      if (dir) rmSync(dir, { recursive: true, force: true });
    },
  };
}

const STORES: Array<[string, () => Promise<Store>]> = [
  ['memory', async () => ({ options: { driver: 'memory' }, cleanup: async () => undefined })],
  [
    'redis',
    async () => {
      const keyPrefix = `mlt:hot:${randomBytes(4).toString('hex')}:`;
      return {
        options: { driver: 'redis', redis: { url: 'redis://127.0.0.1:6379', keyPrefix } },
        cleanup: async () => {
          const admin = new Redis('redis://127.0.0.1:6379');
          const keys = await admin.keys(`${keyPrefix}*`);
          if (keys.length) await admin.del(...keys);
          await admin.quit();
        },
      };
    },
  ],
  ['postgres', () => databaseStore('postgres', 'postgres://postgres@127.0.0.1:5432/test')],
  ['mariadb', () => databaseStore('mysql', 'mysql://root@127.0.0.1:3306/test')],
  [
    'sqlite',
    async () => {
      const dir = mkdtempSync(join(tmpdir(), 'ml-hot-sqlite-'));
      return databaseStore('sqlite', `sqlite:${join(dir, 'sessions.sqlite')}`, dir);
    },
  ],
  [
    'file',
    async () => {
      const dir = mkdtempSync(join(tmpdir(), 'ml-hot-file-'));
      return { options: { driver: 'file', file: { path: dir } }, cleanup: async () => rmSync(dir, { recursive: true, force: true }) };
    },
  ],
];

describe.each(STORES)('hot session through the module (%s)', (_name, makeStore) => {
  it('30 concurrent increments of one session: each saw its predecessor, the counter is exactly 30, and the lock is free afterwards', async () => {
    const store = await makeStore();
    const t = await createTestApp('express', { ...store.options, lock: { waitTimeout: 20, ttl: 30 } });
    try {
      const b = t.browser();
      await b.post('/s/set', { counter: 0 });
      const results = await Promise.all(Array.from({ length: 30 }, () => b.post('/s/increment')));
      expect(results.map((r) => r.status)).toEqual(Array.from({ length: 30 }, () => 201));
      expect(results.map((r) => r.body.counter as number).sort((x, y) => x - y)).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
      expect((await b.get('/s/get')).body.data.counter).toBe(30);
      // The lock is free: a leaked one (store or in-process) would keep this request waiting past lock.waitTimeout (423).
      const after = await b.post('/s/slow-increment?ms=0');
      expect(after.status).toBe(201);
      expect(after.body.counter).toBe(31);
    } finally {
      await t.close();
      await store.cleanup();
    }
  }, 60_000);
});
