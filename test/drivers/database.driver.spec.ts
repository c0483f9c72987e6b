/**
 * DatabaseDriver against the real servers (PostgreSQL and MariaDB/MySQL on 127.0.0.1, SQLite in
 * a temp file). An unreachable server fails these tests: it is never a skip.
 * Every suite works in its own random table (`sessions_<hex>`), created from the shipped
 * migrations and dropped afterwards, so parallel and repeated runs never collide.
 */
import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataSource, type DataSourceOptions } from 'typeorm';
import { DatabaseDriver, dataSourceOptionsFromUrl } from '../../lib/drivers/database.driver.js';
import { SessionException, SessionLockException, SessionStoreUnavailableException } from '../../lib/contracts/session-exception.js';
import type { SessionRecord } from '../../lib/contracts/session-record.interface.js';
import {
  CreateSessionsTable1700000000000,
  createSessionsTableMigration,
  createSessionsTableSql,
  type SessionsTableDialect,
} from '../../migrations/create-sessions-table.migration.js';
import { describeDriverConformance } from './driver-conformance.js';
import { makeRecord, newId, sleep } from '../support/records.js';

const PG_URL = process.env.TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const MYSQL_URL = process.env.TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test';
const DIALECTS: SessionsTableDialect[] = ['postgres', 'mysql', 'sqlite'];

interface Db {
  url: string;
  table: string;
  /** A separate connection for setup and for looking at rows behind the driver's back. */
  admin: DataSource;
  /** Placeholder for the i-th (1-based) parameter. */
  p(i: number): string;
  cleanup(): Promise<void>;
}

const randomTable = (): string => `sessions_${randomBytes(6).toString('hex')}`;

/** Statements of a shipped .sql file, for another table name. */
function sqlFileStatements(dialect: SessionsTableDialect, table = 'sessions'): string[] {
  return readFileSync(join('migrations', `${dialect}.sql`), 'utf8')
    .replace(/--[^\n]*/g, '')
    .replaceAll('sessions', table)
    .split(';')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

/** A fresh database handle; with `create`, the table is made from the dialect's .sql file. */
async function openDb(dialect: SessionsTableDialect, create: 'sql-file' | 'none' = 'sql-file'): Promise<Db> {
  const table = randomTable();
  let url: string;
  let dir: string | null = null;
  if (dialect === 'postgres') url = PG_URL;
  else if (dialect === 'mysql') url = MYSQL_URL;
  else {
    dir = mkdtempSync(join(tmpdir(), 'ml-sess-db-'));
    url = `sqlite:${join(dir, 'sessions.sqlite')}`;
  }
  const admin = new DataSource(dataSourceOptionsFromUrl(url));
  await admin.initialize();
  if (create === 'sql-file') for (const sql of sqlFileStatements(dialect, table)) await admin.query(sql);
  return {
    url,
    table,
    admin,
    p: (i) => (dialect === 'postgres' ? `$${i}` : '?'),
    cleanup: async () => {
      try {
        await admin.query(`DROP TABLE IF EXISTS ${table}`);
      } finally {
        await admin.destroy();
        if (dir) rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}

/** Index name → its columns in order, from the database catalog. */
async function indexesOf(dialect: SessionsTableDialect, admin: DataSource, table: string): Promise<Map<string, string[]>> {
  let rows: Array<{ name: string; col: string; pos: number | string }>;
  if (dialect === 'postgres') {
    rows = await admin.query(
      `SELECT i.relname AS name, a.attname AS col, k.ord AS pos
         FROM pg_index x
         JOIN pg_class t ON t.oid = x.indrelid
         JOIN pg_class i ON i.oid = x.indexrelid
         JOIN LATERAL unnest(x.indkey) WITH ORDINALITY AS k(attnum, ord) ON true
         JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum
        WHERE t.relname = $1 AND t.relnamespace = current_schema()::regnamespace`,
      [table],
    );
  } else if (dialect === 'mysql') {
    rows = await admin.query(
      `SELECT index_name AS name, column_name AS col, seq_in_index AS pos FROM information_schema.statistics WHERE table_schema = DATABASE() AND table_name = ?`,
      [table],
    );
  } else {
    rows = await admin.query(`SELECT il.name AS name, ii.name AS col, ii.seqno AS pos FROM pragma_index_list(?) il JOIN pragma_index_info(il.name) ii`, [table]);
  }
  const out = new Map<string, string[]>();
  for (const r of [...rows].sort((a, b) => Number(a.pos) - Number(b.pos))) out.set(r.name, [...(out.get(r.name) ?? []), r.col]);
  return out;
}

function expectSessionIndexes(indexes: Map<string, string[]>): void {
  const leading = [...indexes.values()].map((cols) => cols[0]);
  expect(leading).toContain('id'); // the primary key (SQLite: its autoindex)
  expect(leading).toContain('user_id');
  expect(leading).toContain('evict_at');
}

/** The driver works on `table`: the whole record life cycle, once. */
async function smoke(url: string, table: string): Promise<void> {
  const driver = new DatabaseDriver({ url, table });
  await driver.open();
  try {
    const id = newId();
    const first = await driver.lockAndRead(id, { waitMs: 1000, ttlMs: 5000 });
    expect(first.record).toBeNull();
    const record = makeRecord({ userId: 'smoke-user' });
    await driver.writeAndUnlock(id, record, first.token);
    expect(await driver.read(id)).toEqual(record);
    expect((await driver.listByUser('smoke-user')).map((s) => s.id)).toEqual([id]);
    await driver.write(newId(), makeRecord({ ttlMs: -1000 }));
    expect(await driver.gc()).toBe(1);
    expect(await driver.destroyByUser('smoke-user')).toBe(1);
  } finally {
    await driver.close();
  }
}

// ---------------------------------------------------------------------------------------------
// The shared conformance suite, once per dialect.

for (const dialect of DIALECTS) {
  describeDriverConformance(`database-${dialect}`, async () => {
    const db = await openDb(dialect);
    return { driver: new DatabaseDriver({ url: db.url, table: db.table }), cleanup: db.cleanup };
  });
}

// ---------------------------------------------------------------------------------------------
// What the conformance suite does not cover: placeholders, GC and leases, destroy under a lock,
// MySQL row counts, exact user matching, big payloads, concurrency through the pool.

describe.each(DIALECTS)('DatabaseDriver on %s', (dialect) => {
  let db: Db;
  let driver: DatabaseDriver;

  beforeAll(async () => {
    db = await openDb(dialect);
    driver = new DatabaseDriver({ url: db.url, table: db.table });
    await driver.open();
  });
  afterAll(async () => {
    await driver?.close();
    await db?.cleanup();
  });

  const rowCount = async (id: string): Promise<number> => {
    const rows: Array<{ n: number | string }> = await db.admin.query(`SELECT COUNT(*) AS n FROM ${db.table} WHERE id = ${db.p(1)}`, [id]);
    return Number(rows[0].n);
  };

  it('a lock on an absent session holds a placeholder row that reads as absent and goes away on unlock', async () => {
    const id = newId();
    const token = await driver.lock(id, { waitMs: 500, ttlMs: 10_000 });
    expect(await rowCount(id)).toBe(1);
    expect(await driver.read(id)).toBeNull();
    const again = await driver.lockAndRead(newId(), { waitMs: 500, ttlMs: 10_000 });
    expect(again.record).toBeNull();
    await driver.unlock(id, token);
    expect(await rowCount(id)).toBe(0);
  });

  it('a lock on an existing session keeps its row on unlock', async () => {
    const id = newId();
    await driver.write(id, makeRecord({ payload: 'kept' }));
    const { token, record } = await driver.lockAndRead(id, { waitMs: 500, ttlMs: 10_000 });
    expect(record!.payload).toBe('kept');
    await driver.unlock(id, token);
    expect((await driver.read(id))!.payload).toBe('kept');
    await driver.unlock(id, token); // a second unlock is harmless
    expect(await rowCount(id)).toBe(1);
  });

  it('lockAndRead of an expired record gives no record', async () => {
    const id = newId();
    await driver.write(id, makeRecord({ ttlMs: -1 }));
    const { token, record } = await driver.lockAndRead(id, { waitMs: 500, ttlMs: 10_000 });
    expect(record).toBeNull();
    await driver.unlock(id, token);
  });

  it('gc() spares an expired row under a live lease and removes it once the lease is released', async () => {
    const id = newId();
    await driver.write(id, makeRecord({ ttlMs: -1000 }));
    const token = await driver.lock(id, { waitMs: 500, ttlMs: 10_000 });
    await driver.gc();
    expect(await rowCount(id)).toBe(1);
    // The holder's fenced write still lands: its lease was not broken.
    await driver.write(id, makeRecord({ ttlMs: -1000, payload: 'still-mine' }), token);
    await driver.unlock(id, token);
    expect(await driver.gc()).toBeGreaterThanOrEqual(1);
    expect(await rowCount(id)).toBe(0);
  });

  it('gc() removes an orphaned placeholder once its lease has ended', async () => {
    const id = newId();
    await driver.lock(id, { waitMs: 500, ttlMs: 300 }); // the holder "dies" without unlocking
    await driver.gc();
    expect(await rowCount(id)).toBe(1);
    await sleep(400);
    expect(await driver.gc()).toBeGreaterThanOrEqual(1);
    expect(await rowCount(id)).toBe(0);
  });

  it('gc() deletes in batches until done and counts every row', async () => {
    const n = 1203;
    const ids = Array.from({ length: n }, () => newId());
    const past = Date.now() - 10_000;
    // IDs are base64url: safe as SQL literals in this test.
    for (let i = 0; i < n; i += 400) {
      const values = ids
        .slice(i, i + 400)
        .map((id) => `('${id}', 'x', ${past}, ${past}, ${past}, ${past})`)
        .join(', ');
      await db.admin.query(`INSERT INTO ${db.table} (id, payload, created_at, last_activity, expires_at, evict_at) VALUES ${values}`);
    }
    const live = newId();
    await driver.write(live, makeRecord());
    expect(await driver.gc()).toBe(n);
    expect(await driver.read(live)).not.toBeNull();
    expect(await driver.gc()).toBe(0);
  });

  it('destroy() under a held lock: the holder cannot resurrect the session, and the lock is free again', async () => {
    const id = newId();
    await driver.write(id, makeRecord({ payload: 'before' }));
    const token = await driver.lock(id, { waitMs: 500, ttlMs: 10_000 });
    await driver.destroy(id); // e.g. "sign out everywhere" from another request
    await expect(driver.write(id, makeRecord({ payload: 'resurrected' }), token)).rejects.toBeInstanceOf(SessionLockException);
    await expect(driver.writeAndUnlock(id, makeRecord({ payload: 'resurrected' }), token)).rejects.toBeInstanceOf(SessionLockException);
    expect(await driver.read(id)).toBeNull();
    await driver.unlock(id, token);
    const next = await driver.lock(id, { waitMs: 200, ttlMs: 10_000 });
    await driver.unlock(id, next);
    expect(await rowCount(id)).toBe(0);
  });

  it('writing the same record twice under one lock succeeds (no false "lock lost" from row counts)', async () => {
    const id = newId();
    const token = await driver.lock(id, { waitMs: 500, ttlMs: 10_000 });
    const record = makeRecord();
    await driver.write(id, record, token);
    await driver.write(id, record, token);
    await driver.writeAndUnlock(id, record, token);
    expect(await driver.read(id)).toEqual(record);
  });

  it('an unfenced write keeps another holder’s lease', async () => {
    const id = newId();
    const token = await driver.lock(id, { waitMs: 500, ttlMs: 10_000 });
    await driver.write(id, makeRecord({ payload: 'unfenced' }));
    await expect(driver.lock(id, { waitMs: 100, ttlMs: 10_000 })).rejects.toBeInstanceOf(SessionLockException);
    await driver.writeAndUnlock(id, makeRecord({ payload: 'fenced' }), token);
    expect((await driver.read(id))!.payload).toBe('fenced');
  });

  it('tokens that are not ours never own a lock', async () => {
    const id = newId();
    const token = await driver.lock(id, { waitMs: 500, ttlMs: 10_000 });
    for (const bad of ["x' OR '1'='1", '', 'é'.repeat(10)]) {
      await expect(driver.write(id, makeRecord(), bad)).rejects.toBeInstanceOf(SessionLockException);
      await driver.unlock(id, bad);
    }
    await expect(driver.lock(id, { waitMs: 50, ttlMs: 10_000 })).rejects.toBeInstanceOf(SessionLockException);
    await driver.unlock(id, token);
  });

  it('user IDs match exactly: case, trailing spaces and look-alikes are other users', async () => {
    const base = 'u' + randomBytes(4).toString('hex');
    const variants = [base, base.toUpperCase(), `${base} `, `${base}é`];
    const ids = variants.map(() => newId());
    for (const [i, v] of variants.entries()) await driver.write(ids[i], makeRecord({ userId: v }));
    for (const [i, v] of variants.entries()) expect((await driver.listByUser(v)).map((s) => s.id)).toEqual([ids[i]]);
    expect(await driver.destroyByUser(base)).toBe(1);
    for (const id of ids.slice(1)) expect(await driver.read(id)).not.toBeNull();
  });

  it('round-trips a 256 KiB payload with multi-byte characters, and nulls in metadata', async () => {
    const id = newId();
    const payload = JSON.stringify({ data: { blob: 'Zoë 🐒 '.repeat(32 * 1024) } });
    expect(Buffer.byteLength(payload)).toBeGreaterThan(256 * 1024);
    const record = makeRecord({ payload });
    record.meta = { ...record.meta, ipAddress: null, userAgent: null, csrfToken: null };
    await driver.write(id, record);
    expect(await driver.read(id)).toEqual(record);
  });

  it('rounds fractional times to whole milliseconds instead of failing', async () => {
    const id = newId();
    const record = makeRecord();
    record.evictAt += 0.4;
    await driver.write(id, record);
    expect((await driver.read(id))!.evictAt).toBe(Math.ceil(record.evictAt));
    const t = await driver.lock(id, { waitMs: 10.5, ttlMs: 1000.5 });
    await driver.unlock(id, t);
  });

  it('serializes concurrent read-modify-write cycles through the connection pool', async () => {
    const id = newId();
    const worker = async (): Promise<void> => {
      for (let i = 0; i < 5; i++) {
        const { token, record } = await driver.lockAndRead(id, { waitMs: 10_000, ttlMs: 10_000 });
        const n = record ? Number(record.payload) : 0;
        await sleep(1);
        await driver.writeAndUnlock(id, makeRecord({ payload: String(n + 1) }), token);
      }
    };
    await Promise.all(Array.from({ length: 6 }, worker));
    expect((await driver.read(id))!.payload).toBe('30');
  });

  it('a shipped .sql file creates the schema the driver expects, with its indexes', async () => {
    expectSessionIndexes(await indexesOf(dialect, db.admin, db.table));
    await smoke(db.url, db.table);
  });

  it('the TypeORM migration class creates the same schema, and its down() drops it', async () => {
    const table = randomTable();
    const migrationsTableName = `mig_${randomBytes(6).toString('hex')}`;
    const options = { ...dataSourceOptionsFromUrl(db.url), migrations: [createSessionsTableMigration(table)], migrationsTableName } as DataSourceOptions;
    const ds = new DataSource(options);
    await ds.initialize();
    try {
      const ran = await ds.runMigrations();
      expect(ran.map((m) => m.name)).toEqual([`CreateSessionsTable_${table}1700000000000`]);
      expectSessionIndexes(await indexesOf(dialect, ds, table));
      await smoke(db.url, table);
      await ds.undoLastMigration();
      expect((await indexesOf(dialect, ds, table)).size).toBe(0);
      const driverOnMissing = new DatabaseDriver({ url: db.url, table });
      await expect(driverOnMissing.open()).rejects.toThrow(/missing or lacks columns.*migrations\//);
    } finally {
      await ds.query(`DROP TABLE IF EXISTS ${table}`);
      await ds.query(`DROP TABLE IF EXISTS ${migrationsTableName}`);
      await ds.destroy();
    }
  });

  it(`migrations/${dialect}.sql and the migration class hold the same DDL`, () => {
    const norm = (s: string): string => s.replace(/[`"]/g, '').replace(/\s+/g, ' ').replace(/\( /g, '(').replace(/ \)/g, ')').trim();
    expect(sqlFileStatements(dialect).map(norm)).toEqual(createSessionsTableSql(dialect).map(norm));
  });

  it("uses the application's DataSource: initializes it if needed and never destroys it", async () => {
    const appDs = new DataSource(dataSourceOptionsFromUrl(db.url));
    const appDriver = new DatabaseDriver({ dataSource: appDs, table: db.table });
    await appDriver.open();
    expect(appDs.isInitialized).toBe(true);
    const id = newId();
    await appDriver.write(id, makeRecord({ payload: 'via-app-ds' }));
    expect((await driver.read(id))!.payload).toBe('via-app-ds');
    await appDriver.close();
    expect(appDs.isInitialized).toBe(true);
    await expect(appDriver.read(id)).rejects.toThrow(/closed/);
    // An already initialized DataSource is used as is.
    const second = new DatabaseDriver({ dataSource: appDs, table: db.table });
    await second.open();
    expect((await second.read(id))!.payload).toBe('via-app-ds');
    await second.close();
    expect(appDs.isInitialized).toBe(true);
    await appDs.destroy();
  });
});

// ---------------------------------------------------------------------------------------------
// MySQL without CLIENT_FOUND_ROWS (a DataSource configured by an application).

describe('DatabaseDriver on mysql with FOUND_ROWS off', () => {
  it('a fenced write of unchanged values is not mistaken for a lost lock, and a lost lock still is', async () => {
    const db = await openDb('mysql');
    const appDs = new DataSource({ ...(dataSourceOptionsFromUrl(db.url) as object), flags: ['-FOUND_ROWS'] } as DataSourceOptions);
    const driver = new DatabaseDriver({ dataSource: appDs, table: db.table });
    try {
      await driver.open();
      const id = newId();
      const record = makeRecord();
      await driver.write(id, record);
      // Prove the flag took effect: an UPDATE that changes nothing reports 0 rows.
      const runner = appDs.createQueryRunner();
      const probe = await runner.query(`UPDATE ${db.table} SET payload = payload WHERE id = ?`, [id], true);
      await runner.release();
      expect(probe.affected).toBe(0);
      const token = await driver.lock(id, { waitMs: 500, ttlMs: 300 });
      await driver.write(id, record, token);
      await driver.write(id, record, token);
      await sleep(400);
      await expect(driver.write(id, record, token)).rejects.toBeInstanceOf(SessionLockException);
    } finally {
      await driver.close();
      await appDs.destroy();
      await db.cleanup();
    }
  });
});

// ---------------------------------------------------------------------------------------------
// PostgreSQL commits the lease asynchronously (SET LOCAL synchronous_commit = off inside the
// acquiring statement); the setting must die with that statement's transaction, or the data
// write that follows on the same pooled connection would lose its durability.

describe('DatabaseDriver on postgres: commit durability', () => {
  it('the asynchronous commit of a lease does not outlive its statement on the pooled connection', async () => {
    const db = await openDb('postgres');
    // One connection: the probe runs where the lease statement ran.
    const appDs = new DataSource({ ...(dataSourceOptionsFromUrl(db.url) as object), poolSize: 1 } as DataSourceOptions);
    const driver = new DatabaseDriver({ dataSource: appDs, table: db.table });
    const setting = async (): Promise<string> => ((await appDs.query('SHOW synchronous_commit')) as Array<{ synchronous_commit: string }>)[0].synchronous_commit;
    try {
      await driver.open();
      const before = await setting();
      const id = newId();
      await driver.write(id, makeRecord());
      const { token, record } = await driver.lockAndRead(id, { waitMs: 500, ttlMs: 5000 });
      expect(record).not.toBeNull();
      expect(await setting()).toBe(before);
      // The lease is committed (visible to another connection), asynchronous or not.
      const rows: Array<{ lock_token: string }> = await db.admin.query(`SELECT lock_token FROM ${db.table} WHERE id = $1`, [id]);
      expect(rows).toEqual([{ lock_token: token }]);
      await driver.writeAndUnlock(id, makeRecord({ payload: 'after-lease' }), token);
      expect((await driver.read(id))!.payload).toBe('after-lease');
      expect(await setting()).toBe(before);
    } finally {
      await driver.close();
      await appDs.destroy();
      await db.cleanup();
    }
  });
});

describe('DatabaseDriver on postgres: a lock attempt the driver gave up on', () => {
  it('does not leave its lease behind when the statement lands after its deadline', async () => {
    const db = await openDb('postgres');
    // The application's DataSource sets no server-side statement_timeout: only the driver's deadline ends the wait.
    const appDs = new DataSource(dataSourceOptionsFromUrl(db.url));
    const driver = new DatabaseDriver({ dataSource: appDs, table: db.table, statementTimeout: 0.3 });
    const blocker = db.admin.createQueryRunner();
    try {
      await driver.open();
      const id = newId();
      await driver.write(id, makeRecord());
      await blocker.connect();
      await blocker.startTransaction();
      await blocker.query(`SELECT id FROM ${db.table} WHERE id = $1 FOR UPDATE`, [id]);
      // The lease statement waits for the row, past the driver's deadline...
      await expect(driver.lock(id, { waitMs: 0, ttlMs: 30_000 })).rejects.toBeInstanceOf(SessionStoreUnavailableException);
      // ...and runs once the row is free: a lease whose token only the driver knew.
      await blocker.commitTransaction();
      await sleep(100);
      const token = await driver.lock(id, { waitMs: 1000, ttlMs: 5000 });
      await driver.unlock(id, token);
    } finally {
      if (blocker.isTransactionActive) await blocker.rollbackTransaction();
      await blocker.release();
      await driver.close();
      if (appDs.isInitialized) await appDs.destroy();
      await db.cleanup();
    }
  });
});

describe('DatabaseDriver on sqlite: table names', () => {
  it('a table named "excluded" (the upsert\'s name for the proposed row) still locks and writes', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ml-sess-db-'));
    const url = `sqlite:${join(dir, 'sessions.sqlite')}`;
    const admin = new DataSource(dataSourceOptionsFromUrl(url));
    await admin.initialize();
    const driver = new DatabaseDriver({ url, table: 'Excluded' });
    try {
      for (const sql of createSessionsTableSql('sqlite', 'Excluded')) await admin.query(sql);
      await driver.open();
      const id = newId();
      await driver.write(id, makeRecord({ payload: 'first' }));
      await driver.write(id, makeRecord({ payload: 'second' }));
      expect((await driver.read(id))!.payload).toBe('second');
      const token = await driver.lock(id, { waitMs: 0, ttlMs: 5000 });
      await expect(driver.lock(id, { waitMs: 50, ttlMs: 5000 })).rejects.toBeInstanceOf(SessionLockException);
      await driver.writeAndUnlock(id, makeRecord({ payload: 'third' }), token);
      expect((await driver.read(id))!.payload).toBe('third');
    } finally {
      await driver.close();
      await admin.destroy();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the migration creates a schema-qualified table ("main.sessions_x") with its indexes', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ml-sess-db-'));
    const url = `sqlite:${join(dir, 'sessions.sqlite')}`;
    const admin = new DataSource(dataSourceOptionsFromUrl(url));
    await admin.initialize();
    const table = `main.${randomTable()}`;
    const driver = new DatabaseDriver({ url, table });
    try {
      for (const sql of createSessionsTableSql('sqlite', table)) await admin.query(sql);
      const indexes: Array<{ name: string }> = await admin.query(`SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ?`, [table.slice(5)]);
      expect(indexes.map((i) => i.name).filter((n) => !n.startsWith('sqlite_autoindex_')).sort()).toEqual([`${table.slice(5)}_evict_at_idx`, `${table.slice(5)}_user_id_idx`]);
      await driver.open();
      const id = newId();
      await driver.write(id, makeRecord({ payload: 'in main' }));
      expect((await driver.read(id))!.payload).toBe('in main');
    } finally {
      await driver.close();
      await admin.destroy();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

// ---------------------------------------------------------------------------------------------
// PostgreSQL runs statements by ID as named prepared statements on the DataSource's pg pool; a
// server that forgets them (a transaction-mode pooler, DISCARD ALL) must cost speed, not requests.

describe('DatabaseDriver on postgres: prepared statements', () => {
  it('prepares statements by ID on the pooled connection, and keeps working unnamed once the server has forgotten them', async () => {
    const db = await openDb('postgres');
    const appDs = new DataSource({ ...(dataSourceOptionsFromUrl(db.url) as object), poolSize: 1 } as DataSourceOptions);
    const driver = new DatabaseDriver({ dataSource: appDs, table: db.table });
    const prepared = async (): Promise<number> =>
      Number(((await appDs.query(`SELECT COUNT(*) AS n FROM pg_prepared_statements WHERE starts_with(name, 'ml_session_stmt_')`)) as Array<{ n: string }>)[0].n);
    try {
      await driver.open();
      const id = newId();
      await driver.write(id, makeRecord({ payload: 'v1' }));
      let { token } = await driver.lockAndRead(id, { waitMs: 500, ttlMs: 5000 });
      await driver.writeAndUnlock(id, makeRecord({ payload: 'v2' }), token);
      expect(await prepared()).toBe(3); // upsert, lease, write + unlock
      // The client still believes they exist; the server answers 26000 and the driver runs the text.
      await appDs.query('DEALLOCATE ALL');
      let record: SessionRecord | null;
      ({ token, record } = await driver.lockAndRead(id, { waitMs: 500, ttlMs: 5000 }));
      expect(record!.payload).toBe('v2');
      await driver.writeAndUnlock(id, makeRecord({ payload: 'v3' }), token);
      expect((await driver.read(id))!.payload).toBe('v3');
      await expect(driver.writeAndUnlock(id, makeRecord({ payload: 'stale' }), token)).rejects.toBeInstanceOf(SessionLockException);
      expect(await prepared()).toBe(0);
    } finally {
      await driver.close();
      await appDs.destroy();
      await db.cleanup();
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Configuration, without a database.

describe('DatabaseDriver configuration', () => {
  it('rejects table names that are not plain identifiers before any SQL is built', () => {
    for (const table of ['sessions; DROP TABLE users', 'a-b', '"x"', '1abc', 'a.b.c', 'x'.repeat(49), '', 'sess ions']) {
      expect(() => new DatabaseDriver({ url: PG_URL, table })).toThrow(SessionException);
    }
    for (const table of ['sessions', 'app_sessions', 'public.sessions', '_s1', 'x'.repeat(48)]) {
      expect(() => new DatabaseDriver({ url: PG_URL, table })).not.toThrow();
    }
  });

  it('needs a url or a DataSource', () => {
    expect(() => new DatabaseDriver({})).toThrow(/database\.dataSource.*database\.url/);
  });

  it('maps URLs to TypeORM DataSource options', () => {
    expect(dataSourceOptionsFromUrl('postgres://u@h/db')).toMatchObject({ type: 'postgres', url: 'postgres://u@h/db' });
    expect(dataSourceOptionsFromUrl('postgresql://u@h/db')).toMatchObject({ type: 'postgres', url: 'postgresql://u@h/db' });
    expect(dataSourceOptionsFromUrl('mysql://u@h/db')).toMatchObject({ type: 'mysql', url: 'mysql://u@h/db' });
    expect(dataSourceOptionsFromUrl('mariadb://u@h/db')).toMatchObject({ type: 'mysql', url: 'mysql://u@h/db' });
    expect(dataSourceOptionsFromUrl('sqlite:./var/s.sqlite')).toMatchObject({ type: 'better-sqlite3', database: './var/s.sqlite' });
    expect(dataSourceOptionsFromUrl('sqlite://var/s.sqlite')).toMatchObject({ type: 'better-sqlite3', database: 'var/s.sqlite' });
    expect(dataSourceOptionsFromUrl('sqlite:///abs/s.sqlite')).toMatchObject({ type: 'better-sqlite3', database: '/abs/s.sqlite' });
    expect(dataSourceOptionsFromUrl('sqlite::memory:')).toMatchObject({ type: 'better-sqlite3', database: ':memory:' });
    expect(() => dataSourceOptionsFromUrl('sqlite:')).toThrow(/needs a path/);
    expect(() => dataSourceOptionsFromUrl('mongodb://h/db')).toThrow(/must start with/);
    expect(() => dataSourceOptionsFromUrl('/just/a/path')).toThrow(/must start with/);
  });

  it('refuses DataSources of databases it does not support, and things that are not DataSources', async () => {
    const fakeOracle = { options: { type: 'oracle' }, isInitialized: false, initialize: async () => {}, createQueryRunner: () => ({}) };
    const other = new DatabaseDriver({ dataSource: fakeOracle });
    await expect(other.open()).rejects.toThrow(/postgres, mysql, mariadb and better-sqlite3/);
    const notDs = new DatabaseDriver({ dataSource: { hello: 'world' } });
    await expect(notDs.open()).rejects.toThrow(/must be a TypeORM DataSource/);
  });

  it('an unreachable server fails open() with a 503-class error that says what to check', async () => {
    for (const url of ['postgres://postgres@127.0.0.1:1/test', 'mysql://root@127.0.0.1:1/test']) {
      const driver = new DatabaseDriver({ url });
      const err = await driver.open().then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(SessionStoreUnavailableException);
      expect((err as Error).message).toMatch(/Check database\.url/);
      await driver.close();
    }
  });

  it('operations before open() say to call open()', async () => {
    await expect(new DatabaseDriver({ url: PG_URL }).read(newId())).rejects.toThrow(/call open\(\) first/);
  });

  it('loads typeorm only lazily: the driver file has no runtime import of it', () => {
    const source = readFileSync('lib/drivers/database.driver.ts', 'utf8');
    const imports = source.match(/^import .* from ['"]typeorm['"];?$/gm) ?? [];
    expect(imports.length).toBeGreaterThan(0);
    for (const line of imports) expect(line).toMatch(/^import type /);
    expect(source).toContain("await import('typeorm')");
  });

  it('the default migration class is CreateSessionsTable1700000000000 on table "sessions"', async () => {
    const seen: string[] = [];
    const fakeRunner = { connection: { options: { type: 'postgres' } }, query: async (sql: string) => void seen.push(sql) };
    const migration = new CreateSessionsTable1700000000000();
    expect(migration.name).toBe('CreateSessionsTable1700000000000');
    await migration.up(fakeRunner as never);
    expect(seen).toEqual(createSessionsTableSql('postgres'));
    expect(() => createSessionsTableMigration('bad-name')).toThrow(/Invalid session table name/);
    expect(() => createSessionsTableMigration('ok', 123)).toThrow(/13-digit/);
  });
});
