/**
 * The database driver when its server fails, through a TCP proxy in front of the real
 * PostgreSQL and MariaDB (test/support/tcp-fault-proxy.ts): connections reset in the middle of a
 * statement (restart, failover, killed backend) and a server that keeps its sockets but answers
 * nothing. A call must fail with SessionStoreUnavailableException (503) within
 * `statementTimeout`, the process must not crash, and the same driver must work again after.
 */
import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { DataSource } from 'typeorm';
import { DatabaseDriver, dataSourceOptionsFromUrl } from '../../lib/drivers/database.driver.js';
import { SessionException, SessionStoreUnavailableException } from '../../lib/contracts/session-exception.js';
import type { SessionDriver } from '../../lib/contracts/session-driver.interface.js';
import { makeRecord, newId, sleep, waitForRecovery } from '../support/records.js';
import { TcpFaultProxy } from '../support/tcp-fault-proxy.js';

const SERVERS = [
  { dialect: 'postgres' as const, url: process.env.TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test' },
  { dialect: 'mysql' as const, url: process.env.TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test' },
];
const STATEMENT_TIMEOUT_S = 0.6;

const uncaught: unknown[] = [];
const onUncaught = (err: unknown): void => void uncaught.push(err);

function viaProxy(url: string, port: number): string {
  const u = new URL(url);
  u.host = `127.0.0.1:${port}`;
  return u.toString();
}

/** Every driver call that reaches the server; each must fail with 503 while it does not answer. */
function allCalls(driver: SessionDriver, id: string): Array<[string, () => Promise<unknown>]> {
  const lock = { waitMs: 5000, ttlMs: 10_000 };
  return [
    ['read', () => driver.read(id)],
    ['write', () => driver.write(id, makeRecord())],
    ['write (fenced)', () => driver.write(id, makeRecord(), 'sometoken')],
    ['destroy', () => driver.destroy(id)],
    ['lock', () => driver.lock(id, lock)],
    ['lockAndRead', () => driver.lockAndRead!(id, lock)],
    ['writeAndUnlock', () => driver.writeAndUnlock!(id, makeRecord(), 'sometoken')],
    ['listByUser', () => driver.listByUser('someone')],
  ];
}


describe.each(SERVERS)('DatabaseDriver on $dialect when the server fails', ({ dialect, url }) => {
  const table = `sessions_${randomBytes(6).toString('hex')}`;
  let admin: DataSource;
  let proxy: TcpFaultProxy;
  let driver: DatabaseDriver;

  beforeAll(async () => {
    process.on('uncaughtException', onUncaught);
    admin = new DataSource(dataSourceOptionsFromUrl(url));
    await admin.initialize();
    const ddl = readFileSync(join('migrations', `${dialect}.sql`), 'utf8').replace(/--[^\n]*/g, '').replaceAll('sessions', table);
    for (const statement of ddl.split(';').map((s) => s.trim()).filter(Boolean)) await admin.query(statement);
    proxy = await TcpFaultProxy.start('127.0.0.1', Number(new URL(url).port));
    driver = new DatabaseDriver({ url: viaProxy(url, proxy.port), table, statementTimeout: STATEMENT_TIMEOUT_S });
    await driver.open();
  });
  afterAll(async () => {
    proxy.thaw();
    await driver.close();
    await proxy.close();
    await admin.query(`DROP TABLE IF EXISTS ${table}`);
    await admin.destroy();
    process.removeListener('uncaughtException', onUncaught);
  });

  it('the 503 of a connection lost mid-statement carries no session ID or payload, not even in its cause', async () => {
    const id = newId();
    const payload = `secret-payload-${randomBytes(8).toString('hex')}`;
    proxy.freeze();
    const outcome = driver.write(id, makeRecord({ payload })).then(
      () => 'resolved',
      (err: unknown) => err,
    );
    await sleep(100);
    proxy.cutAll();
    proxy.thaw();
    const err = await outcome;
    expect(err).toBeInstanceOf(SessionStoreUnavailableException);
    // What an application's logger would print: the error with its cause, all levels deep.
    const printed = inspect(err, { depth: 10, showHidden: true });
    expect(printed).toMatch(/did not answer/);
    expect(printed).not.toContain(id);
    expect(printed).not.toContain(payload);
  });

  it('a connection reset in the middle of a statement fails that call with 503, crashes nothing, and the driver goes on', async () => {
    const id = newId();
    await driver.write(id, makeRecord({ payload: 'before' }));
    for (const [name, call] of allCalls(driver, newId()).slice(0, 3)) {
      proxy.freeze(); // the statement leaves, its answer never comes...
      const outcome = call().then(
        () => 'resolved',
        (err: unknown) => err,
      );
      await sleep(100);
      proxy.cutAll(); // ...and the connection goes down under it
      proxy.thaw();
      const err = await outcome;
      expect({ name, unavailable: err instanceof SessionStoreUnavailableException }).toEqual({ name, unavailable: true });
      expect((err as SessionStoreUnavailableException).getStatus()).toBe(503);
      expect((err as Error).message).toMatch(/did not answer/);
    }
    await sleep(50); // an 'error' emitted late would surface here
    expect(uncaught).toEqual([]);
    // New connections through the proxy: the same driver works again.
    expect((await driver.read(id))?.payload).toBe('before');
  });

  it('a server that answers nothing: more calls at once than idle pool connections all fail within statementTimeout', async () => {
    await Promise.all(Array.from({ length: 3 }, () => driver.read(newId()))); // a few idle connections in the pool
    proxy.freeze();
    try {
      const started = Date.now();
      const outcomes = await Promise.all(
        Array.from({ length: 14 }, () =>
          driver.read(newId()).then(
            () => null,
            (e: unknown) => e,
          ),
        ),
      );
      const took = Date.now() - started;
      expect(outcomes.every((e) => e instanceof SessionStoreUnavailableException)).toBe(true);
      // The pool wait and the statement share one deadline.
      expect(took).toBeLessThan(STATEMENT_TIMEOUT_S * 1000 + 1000);
    } finally {
      proxy.thaw();
    }
    await waitForRecovery(driver, 10_000);
  });

  it('a server that answers nothing: every call fails with 503 within statementTimeout, and the driver recovers', async () => {
    const id = newId();
    await driver.write(id, makeRecord({ payload: 'kept' }));
    proxy.freeze();
    try {
      // Another ID: a MySQL statement that timed out still runs once the server answers again.
      for (const [name, call] of allCalls(driver, newId())) {
        const started = Date.now();
        const err = await call().then(
          () => null,
          (e: unknown) => e,
        );
        const took = Date.now() - started;
        expect({ name, unavailable: err instanceof SessionStoreUnavailableException }).toEqual({ name, unavailable: true });
        expect((err as Error).message).toMatch(/statementTimeout/);
        expect({ name, bounded: took < STATEMENT_TIMEOUT_S * 1000 + 1000 }).toEqual({ name, bounded: true });
      }
    } finally {
      proxy.thaw();
    }
    await waitForRecovery(driver, 10_000);
    expect((await driver.read(id))?.payload).toBe('kept');
    expect(uncaught).toEqual([]);
  });
});

describe('DatabaseDriver on postgres: a statement that timed out', () => {
  const url = SERVERS[0].url;
  const table = `sessions_${randomBytes(6).toString('hex')}`;
  let admin: DataSource;
  let driver: DatabaseDriver;

  beforeAll(async () => {
    admin = new DataSource(dataSourceOptionsFromUrl(url));
    await admin.initialize();
    const ddl = readFileSync(join('migrations', 'postgres.sql'), 'utf8').replace(/--[^\n]*/g, '').replaceAll('sessions', table);
    for (const statement of ddl.split(';').map((s) => s.trim()).filter(Boolean)) await admin.query(statement);
    driver = new DatabaseDriver({ url, table, statementTimeout: STATEMENT_TIMEOUT_S });
    await driver.open();
  });
  afterAll(async () => {
    await driver.close();
    await admin.query(`DROP TABLE IF EXISTS ${table}`);
    await admin.destroy();
  });

  it('is cancelled by the server too (on the pool built from url): a write stuck behind a row lock does not land later', async () => {
    const id = newId();
    await driver.write(id, makeRecord({ payload: 'before' }));
    const blocker = admin.createQueryRunner();
    await blocker.connect();
    await blocker.startTransaction();
    try {
      await blocker.query(`SELECT id FROM ${table} WHERE id = $1 FOR UPDATE`, [id]);
      const started = Date.now();
      const err = await driver.write(id, makeRecord({ payload: 'late' })).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(SessionStoreUnavailableException);
      expect(Date.now() - started).toBeLessThan(STATEMENT_TIMEOUT_S * 1000 + 1000);
    } finally {
      await blocker.commitTransaction();
      await blocker.release();
    }
    await sleep(300);
    expect((await driver.read(id))?.payload).toBe('before');
  });
});

describe('DatabaseDriver statementTimeout option', () => {
  it('refuses a timeout that is not a positive number of seconds, or longer than a Node timer can wait', () => {
    for (const bad of [0, -1, Number.NaN, Number.POSITIVE_INFINITY, '5' as unknown as number, 1e7]) {
      expect(() => new DatabaseDriver({ url: 'postgres://u@h/db', statementTimeout: bad })).toThrow(SessionException);
      expect(() => new DatabaseDriver({ url: 'postgres://u@h/db', statementTimeout: bad })).toThrow(/statementTimeout/);
    }
    expect(() => new DatabaseDriver({ url: 'postgres://u@h/db', statementTimeout: 2147483 })).not.toThrow();
  });
});
