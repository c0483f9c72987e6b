import { createHash } from 'node:crypto';
import type { DataSource, DataSourceOptions, QueryRunner } from 'typeorm';
import { isValidSessionId, newLockToken } from '../contracts/session-id.js';
import { SessionException, SessionLockException, SessionStoreUnavailableException } from '../contracts/session-exception.js';
import type { LockOptions, SessionDriver } from '../contracts/session-driver.interface.js';
import type { DatabaseDriverOptions } from '../contracts/session-options.interface.js';
import type { SessionMeta, SessionRecord, SessionSummary } from '../contracts/session-record.interface.js';

type Dialect = 'postgres' | 'mysql' | 'sqlite';

/** What TypeORM's `QueryRunner.query(sql, params, true)` resolves to, reduced to what we read. */
interface Result {
  records: Array<Record<string, unknown>>;
  affected?: number;
}

/** A table name: a plain identifier, optionally `schema.table`; the table part at most 48 characters so index names fit. */
export const SESSIONS_TABLE_NAME = /^(?:([A-Za-z_][A-Za-z0-9_]{0,62})\.)?([A-Za-z_][A-Za-z0-9_]{0,47})$/;
/** Lock tokens are ours (UUIDs, `newLockToken`); anything else cannot own a lock and never reaches SQL. */
const TOKEN_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
const GC_BATCH = 500;
const BACKOFF_MIN_MS = 5;
const BACKOFF_MAX_MS = 50;
/** Statements are single-row and idempotent when rolled back: a deadlock victim is simply run again. */
const MAX_ATTEMPTS = 3;
/**
 * PostgreSQL errors that a named (server-side prepared) statement can meet and its unnamed form
 * would not: 26000 (gone: a pooler such as PgBouncer in transaction mode, or DISCARD/DEALLOCATE),
 * 42P05 (already exists under that name on a pooler's shared server connection), 0A000 (a cached
 * plan whose result type a schema change altered). All are raised before the statement runs (and
 * a failed statement is its own rolled-back transaction anyway), so running it again unnamed is safe.
 */
const PREPARED_STATEMENT_TROUBLE = new Set(['26000', '42P05', '0A000']);

/** The part of node-postgres (`pg.Pool`, behind TypeORM's PostgreSQL driver) that `run()` uses. */
interface PgPool {
  connect(): Promise<PgClient>;
  readonly idleCount?: number;
}
interface PgClient {
  query(config: { name?: string; text: string; values: unknown[]; query_timeout?: number }): Promise<{ rows?: Array<Record<string, unknown>>; rowCount?: number | null }>;
  /** With an error, pg-pool closes the connection instead of pooling it again. */
  release(err?: Error): void;
  on(event: 'error', listener: (err: Error) => void): unknown;
  removeListener(event: 'error', listener: (err: Error) => void): unknown;
}

/** `statementTimeout` when not given, seconds. */
const DEFAULT_STATEMENT_TIMEOUT_S = 5;

/** Columns holding the record, in the order `recordValues` produces their values. */
const RECORD_COLUMNS = ['user_id', 'ip_address', 'user_agent', 'payload', 'csrf_token', 'created_at', 'last_activity', 'expires_at', 'evict_at'] as const;
const SELECT_COLUMNS = `id, ${RECORD_COLUMNS.join(', ')}`;

/**
 * The lease clock: lock columns are compared with the database's clock, in epoch ms, so app
 * servers with skewed clocks still agree on when a lease ends. (Record expiry, `evict_at`, is
 * computed by the application and compared with the application's `Date.now()`, like every other driver.)
 */
const DB_NOW_MS: Record<Dialect, string> = {
  // statement_timestamp(): fixed for the statement, unlike clock_timestamp(), and not frozen by a transaction, unlike now().
  postgres: '(floor(extract(epoch from statement_timestamp()) * 1000))::bigint',
  // UTC arithmetic: UNIX_TIMESTAMP(NOW(3)) is ambiguous in the hour a DST change repeats.
  mysql: "(TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', UTC_TIMESTAMP(6)) DIV 1000)",
  sqlite: "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)",
};

/**
 * Sessions in a SQL table through TypeORM: PostgreSQL, MySQL/MariaDB and SQLite (better-sqlite3).
 *
 * Locks are leases stored on the session row itself (`lock_token`, `lock_expires_at`), taken
 * and released with single conditional statements, so they hold across every connection of a
 * pool and every process sharing the database; see docs/drivers/database.md for the argument.
 * `typeorm` is imported only in `open()`, so applications that use another driver never load it.
 */
export class DatabaseDriver implements SessionDriver {
  /** As given (for messages); validated by the constructor. */
  private readonly tableLabel: string;
  /** Quoted for the dialect, set by open(). */
  private table = '';
  private dataSource: DataSource | null = null;
  private ownsDataSource = false;
  private dialect: Dialect | null = null;
  private opened: Promise<void> | null = null;
  private closed = false;
  /** Whether statements by ID run as named prepared statements on PostgreSQL; off for good once the server refuses one. */
  private prepare = true;
  /** SQL text → its prepared statement name. The texts are fixed per table, so this stays small. */
  private readonly statementNames = new Map<string, string>();
  /** How long one statement (pool checkout included) may take before the call fails with a 503. */
  private readonly statementTimeoutMs: number;

  /**
   * @param options `dataSource` (the application's TypeORM DataSource; initialized here if it
   * is not yet, never destroyed here) or `url` (`postgres://…`, `mysql://…`, `mariadb://…`,
   * `sqlite:path`), and `table` (default `sessions`).
   */
  constructor(private readonly options: DatabaseDriverOptions) {
    if (options.dataSource === undefined && !options.url) {
      throw new SessionException('The database session driver needs database.dataSource (a TypeORM DataSource) or database.url (postgres://…, mysql://…, mariadb://…, sqlite:path).');
    }
    const table = options.table ?? 'sessions';
    if (typeof table !== 'string' || !SESSIONS_TABLE_NAME.test(table)) {
      throw new SessionException(`Invalid database.table "${table}": use letters, digits and underscores (optionally "schema.table"), starting with a letter or underscore, at most 48 characters.`);
    }
    this.tableLabel = table;
    const timeout = options.statementTimeout ?? DEFAULT_STATEMENT_TIMEOUT_S;
    // At most 2^31 - 1 ms: Node runs a longer timer after 1 ms, which would fail every statement.
    if (typeof timeout !== 'number' || !Number.isFinite(timeout) || timeout <= 0 || timeout * 1000 > 2147483647) {
      throw new SessionException(`Invalid database.statementTimeout "${String(timeout)}": use a positive number of seconds up to 2147483 (default ${DEFAULT_STATEMENT_TIMEOUT_S}).`);
    }
    this.statementTimeoutMs = Math.ceil(timeout * 1000);
  }

  /** Connects (or initializes the given DataSource) and checks that the session table has the expected columns. */
  open(): Promise<void> {
    if (this.closed) return Promise.reject(new SessionException('The database session driver was closed; create a new one.'));
    // Concurrent or repeated calls share one connection attempt.
    this.opened ??= this.connect().catch((err: unknown) => {
      this.opened = null;
      throw err;
    });
    return this.opened;
  }

  /** Destroys the DataSource if this driver created it from `url`; an application's DataSource is left alone. */
  async close(): Promise<void> {
    this.closed = true;
    const ds = this.dataSource;
    this.dataSource = null;
    this.opened = null;
    if (ds && this.ownsDataSource && ds.isInitialized) await ds.destroy();
  }

  /** The record, or `null` when absent, past `evictAt`, or only a lock placeholder. */
  async read(id: string): Promise<SessionRecord | null> {
    assertId(id);
    const q = this.sql();
    const { records } = await this.run(
      `SELECT ${SELECT_COLUMNS} FROM ${this.table} WHERE id = ${q.p(id)} AND payload IS NOT NULL AND evict_at > ${q.p(Date.now())}`,
      q.params,
      true,
    );
    return records.length === 0 ? null : toRecord(records[0]);
  }

  /**
   * Without `lockToken`: one atomic upsert (lock columns untouched). With it: an UPDATE that
   * matches only while that lease is live; no match → `SessionLockException`, nothing written.
   */
  async write(id: string, record: SessionRecord, lockToken?: string): Promise<void> {
    assertId(id);
    const values = recordValues(record);
    if (lockToken === undefined) {
      await this.upsert(id, values);
      return;
    }
    if (!TOKEN_PATTERN.test(lockToken)) throw lockLost();
    const q = this.sql();
    const set = RECORD_COLUMNS.map((c, i) => `${c} = ${q.p(values[i])}`).join(', ');
    const now = DB_NOW_MS[this.requireDialect()];
    const { affected } = await this.run(
      `UPDATE ${this.table} SET ${set} WHERE id = ${q.p(id)} AND lock_token = ${q.p(lockToken)} AND lock_expires_at > ${now}`,
      q.params,
      true,
    );
    if (affected === 1) return;
    // MySQL without CLIENT_FOUND_ROWS reports 0 for a matched row whose values did not change
    // (the same record written twice in one millisecond): ask whether the lease is still ours.
    if (this.dialect === 'mysql' && (await this.holds(id, lockToken))) return;
    throw lockLost();
  }

  /** Fenced write and lease release in one statement (clearing the token always changes the row, so the count is exact on MySQL too). */
  async writeAndUnlock(id: string, record: SessionRecord, token: string): Promise<void> {
    assertId(id);
    if (!TOKEN_PATTERN.test(token)) throw lockLost();
    const values = recordValues(record);
    const q = this.sql();
    const set = RECORD_COLUMNS.map((c, i) => `${c} = ${q.p(values[i])}`).join(', ');
    const now = DB_NOW_MS[this.requireDialect()];
    const { affected } = await this.run(
      `UPDATE ${this.table} SET ${set}, lock_token = NULL, lock_expires_at = NULL WHERE id = ${q.p(id)} AND lock_token = ${q.p(token)} AND lock_expires_at > ${now}`,
      q.params,
      true,
    );
    if (affected !== 1) throw lockLost();
  }

  /**
   * Deletes the row, lease included. A request still holding the lease then fails its fenced
   * write (`SessionLockException`) instead of resurrecting a session that was destroyed under it
   * (e.g. by "sign out everywhere").
   */
  async destroy(id: string): Promise<void> {
    assertId(id);
    const q = this.sql();
    await this.run(`DELETE FROM ${this.table} WHERE id = ${q.p(id)}`, q.params, true);
  }

  /**
   * Deletes rows whose `evict_at` has passed, 500 per statement, skipping rows under a live
   * lease (deleting one would let a second request take the lock while the first still runs).
   * Orphaned lock placeholders (`evict_at` 0) go once their lease has ended.
   */
  async gc(): Promise<number> {
    const dialect = this.requireDialect();
    const now = DB_NOW_MS[dialect];
    let total = 0;
    for (;;) {
      const q = this.sql();
      const cutoff = Date.now();
      let sql: string;
      if (dialect === 'mysql') {
        sql = `DELETE FROM ${this.table} WHERE evict_at <= ${q.p(cutoff)} AND (lock_token IS NULL OR lock_expires_at <= ${now}) ORDER BY evict_at LIMIT ${GC_BATCH}`;
      } else {
        // The outer conditions repeat the inner ones: PostgreSQL re-checks them against a row
        // that a concurrent lock() changed after the sub-select saw it.
        const cond = `evict_at <= ${q.p(cutoff)} AND (lock_token IS NULL OR lock_expires_at <= ${now})`;
        const again = `evict_at <= ${q.p(cutoff)} AND (lock_token IS NULL OR lock_expires_at <= ${now})`;
        sql = `DELETE FROM ${this.table} WHERE id IN (SELECT id FROM ${this.table} WHERE ${cond} LIMIT ${GC_BATCH}) AND ${again}`;
      }
      const { affected } = await this.run(sql, q.params);
      const n = affected ?? 0;
      total += n;
      if (n < GC_BATCH) return total;
    }
  }

  /** Takes the session's lease, polling with backoff (5 → 50 ms) up to `waitMs`. */
  async lock(id: string, options: LockOptions): Promise<string> {
    return (await this.acquire(id, options, false)).token;
  }

  /** `lock` + `read`: on PostgreSQL and SQLite the acquiring statement returns the row, so it is one round trip. */
  async lockAndRead(id: string, options: LockOptions): Promise<{ token: string; record: SessionRecord | null }> {
    return this.acquire(id, options, true);
  }

  /** Releases the lease if `token` still owns it; a placeholder row (lock without record) is deleted instead. */
  async unlock(id: string, token: string): Promise<void> {
    assertId(id);
    if (!TOKEN_PATTERN.test(token)) return;
    let q = this.sql();
    const { affected } = await this.run(
      `UPDATE ${this.table} SET lock_token = NULL, lock_expires_at = NULL WHERE id = ${q.p(id)} AND lock_token = ${q.p(token)} AND payload IS NOT NULL`,
      q.params,
      true,
    );
    if (affected === 1) return;
    q = this.sql();
    await this.run(`DELETE FROM ${this.table} WHERE id = ${q.p(id)} AND lock_token = ${q.p(token)} AND payload IS NULL`, q.params, true);
  }

  /** Renews a lease for its owner, on the database clock. */
  async extend(id: string, token: string, ttlMs: number): Promise<boolean> {
    assertId(id);
    if (!TOKEN_PATTERN.test(token)) return false;
    const now = DB_NOW_MS[this.requireDialect()];
    const q = this.sql();
    const { affected } = await this.run(
      `UPDATE ${this.table} SET lock_expires_at = ${now} + ${q.p(Math.max(1, Math.ceil(ttlMs)))} WHERE id = ${q.p(id)} AND lock_token = ${q.p(token)} AND lock_expires_at > ${now}`,
      q.params,
      true,
    );
    // MySQL may count only changed rows: ask when it says none.
    return affected === 1 || (affected === 0 && this.requireDialect() === 'mysql' && (await this.holds(id, token)));
  }

  /** Live sessions of `userId`, through the `user_id` index. */
  async listByUser(userId: string): Promise<SessionSummary[]> {
    const q = this.sql();
    const { records } = await this.run(
      `SELECT ${SELECT_COLUMNS} FROM ${this.table} WHERE ${this.userMatch(q, userId)} AND payload IS NOT NULL AND evict_at > ${q.p(Date.now())}`,
      q.params,
    );
    return records.map((row) => ({ id: String(row.id), meta: toRecord(row).meta }));
  }

  /** Deletes every row of `userId` except `exceptId`; resolves to how many. */
  async destroyByUser(userId: string, exceptId?: string): Promise<number> {
    const q = this.sql();
    let sql = `DELETE FROM ${this.table} WHERE ${this.userMatch(q, userId)}`;
    if (exceptId !== undefined) sql += ` AND id <> ${q.p(exceptId)}`;
    const { affected } = await this.run(sql, q.params);
    return affected ?? 0;
  }

  // ---------------------------------------------------------------------------------------

  private async connect(): Promise<void> {
    const typeorm = await import('typeorm');
    let ds: DataSource;
    if (this.options.dataSource !== undefined) {
      if (!isDataSource(this.options.dataSource)) {
        throw new SessionException('database.dataSource must be a TypeORM DataSource (new DataSource({...}) from typeorm).');
      }
      ds = this.options.dataSource;
      this.ownsDataSource = false;
    } else {
      const options = dataSourceOptionsFromUrl(this.options.url!);
      // Our own pool: PostgreSQL cancels a statement at the same deadline, so one that timed out
      // here (say, waiting on a row lock) does not go on to apply later.
      ds = new typeorm.DataSource(options.type === 'postgres' ? { ...options, extra: { ...options.extra, statement_timeout: this.statementTimeoutMs } } : options);
      this.ownsDataSource = true;
    }
    const dialect = databaseDialectOf(String(ds.options.type));
    if (!ds.isInitialized) {
      try {
        await ds.initialize();
      } catch (err) {
        // The application may have initialized its DataSource at the same moment: that is fine.
        if (!ds.isInitialized) {
          throw new SessionStoreUnavailableException(
            `Could not connect to the session database (${dialect}): ${redact(errorText(err))}. Check database.url / the DataSource options and that the server is running.`,
          );
        }
      }
    }
    if (this.closed) {
      // close() ran while we were connecting: do not leave a pool behind it.
      if (this.ownsDataSource && ds.isInitialized) await ds.destroy();
      throw new SessionException('The database session driver was closed while opening.');
    }
    this.dataSource = ds;
    this.dialect = dialect;
    ({ table: this.table } = quoteTable(dialect, this.tableLabel));
    try {
      await this.run(`SELECT ${SELECT_COLUMNS}, lock_token, lock_expires_at FROM ${this.table} WHERE 1 = 0`, []);
    } catch (err) {
      this.dataSource = null;
      this.dialect = null;
      if (this.ownsDataSource && ds.isInitialized) await ds.destroy().catch(() => {});
      if (err instanceof SessionStoreUnavailableException) throw err;
      throw new SessionException(
        `The session table "${this.tableLabel}" is missing or lacks columns (${errorText(err)}). Create it with migrations/${dialect}.sql or the CreateSessionsTable TypeORM migration.`,
      );
    }
  }

  /** One acquisition loop for `lock` and `lockAndRead`. */
  private async acquire(id: string, { waitMs, ttlMs }: LockOptions, withRecord: boolean): Promise<{ token: string; record: SessionRecord | null }> {
    assertId(id);
    const ttl = Math.max(1, Math.ceil(ttlMs));
    const deadline = Date.now() + Math.max(0, waitMs);
    const token = newLockToken();
    let delay = BACKOFF_MIN_MS;
    for (;;) {
      let got: { record: SessionRecord | null } | null;
      try {
        got = await this.tryAcquire(id, token, ttl, withRecord);
      } catch (err) {
        this.releaseFailedAttempt(id, token);
        throw err;
      }
      if (got) return { token, record: got.record };
      const left = deadline - Date.now();
      if (left <= 0) throw new SessionLockException();
      // Jitter keeps waiters of one session from polling in lockstep.
      await sleep(Math.min(left, delay * (0.5 + Math.random() / 2)));
      delay = Math.min(BACKOFF_MAX_MS, delay * 2);
    }
  }

  /**
   * A failed attempt may still have taken the lease: on MySQL the read after the UPDATE that
   * took it failed, or a statement the driver gave up on (its deadline passed) ran late. Nobody
   * but this driver knows the token, so release it now and once more when such a statement has
   * had its time to land; otherwise the session would answer 423 for `lock.ttl`. Best effort.
   */
  private releaseFailedAttempt(id: string, token: string): void {
    const release = (): void => {
      if (this.dataSource) this.unlock(id, token).catch(() => undefined);
    };
    release();
    setTimeout(release, this.statementTimeoutMs).unref();
  }

  /** One attempt; `null` when somebody else holds a live lease. */
  private async tryAcquire(id: string, token: string, ttl: number, withRecord: boolean): Promise<{ record: SessionRecord | null } | null> {
    const dialect = this.requireDialect();
    const now = DB_NOW_MS[dialect];
    if (dialect !== 'mysql') {
      // Inserts a placeholder row (payload NULL, evict_at 0) holding the lease, or takes the
      // lease of the existing row if it is free or ended; RETURNING yields a row only on success.
      const q = this.sql();
      const pg = dialect === 'postgres';
      // The target is aliased: a table named "excluded" would otherwise shadow the proposed row.
      const col = (c: string): string => `s.${c}`;
      const values = `${q.p(id)}, NULL, 0, 0, 0, 0, ${q.p(token)}, ${now} + ${q.p(ttl)}`;
      // PostgreSQL: the lease commits without waiting for its WAL flush (SET LOCAL, so only this
      // statement's implicit transaction). A lease lost in a crash only makes its holder's fenced
      // write fail, and that write's synchronous commit flushes the lease's WAL before its own.
      const { records } = await this.run(
        (pg ? `WITH async_commit AS (SELECT set_config('synchronous_commit', 'off', true)) INSERT INTO ${this.table} AS s ` : `INSERT INTO ${this.table} AS s `) +
          `(id, payload, created_at, last_activity, expires_at, evict_at, lock_token, lock_expires_at) ` +
          (pg ? `SELECT ${values} FROM async_commit ` : `VALUES (${values}) `) +
          `ON CONFLICT (id) DO UPDATE SET lock_token = excluded.lock_token, lock_expires_at = excluded.lock_expires_at ` +
          `WHERE ${col('lock_token')} IS NULL OR ${col('lock_expires_at')} <= ${now} ` +
          `RETURNING ${withRecord ? SELECT_COLUMNS : 'id'}`,
        q.params,
        true,
      );
      if (records.length === 0) return null;
      return { record: withRecord ? liveRecord(records[0]) : null };
    }
    // MySQL has no conditional upsert with a trustworthy row count (ON DUPLICATE KEY UPDATE
    // reports 1 for "unchanged" under CLIENT_FOUND_ROWS, like an insert), so: take an existing
    // free row with a conditional UPDATE (a fresh token always changes it, so the count is exact),
    // else insert the placeholder; INSERT IGNORE reports 0 when the row appeared meanwhile.
    let q = this.sql();
    const taken = await this.run(
      `UPDATE ${this.table} SET lock_token = ${q.p(token)}, lock_expires_at = ${now} + ${q.p(ttl)} WHERE id = ${q.p(id)} AND (lock_token IS NULL OR lock_expires_at <= ${now})`,
      q.params,
    );
    if (taken.affected === 1) {
      if (!withRecord) return { record: null };
      q = this.sql();
      const { records } = await this.run(`SELECT ${SELECT_COLUMNS} FROM ${this.table} WHERE id = ${q.p(id)} AND lock_token = ${q.p(token)}`, q.params);
      return { record: records.length === 0 ? null : liveRecord(records[0]) };
    }
    q = this.sql();
    const inserted = await this.run(
      `INSERT IGNORE INTO ${this.table} (id, payload, created_at, last_activity, expires_at, evict_at, lock_token, lock_expires_at) ` +
        `VALUES (${q.p(id)}, NULL, 0, 0, 0, 0, ${q.p(token)}, ${now} + ${q.p(ttl)})`,
      q.params,
    );
    return inserted.affected === 1 ? { record: null } : null;
  }

  private async upsert(id: string, values: unknown[]): Promise<void> {
    const dialect = this.requireDialect();
    const q = this.sql();
    const cols = ['id', ...RECORD_COLUMNS].join(', ');
    const vals = [id, ...values].map((v) => q.p(v)).join(', ');
    // PostgreSQL and SQLite: aliased, so that a table named "excluded" cannot shadow the proposed row.
    let sql = `INSERT INTO ${this.table}${dialect === 'mysql' ? '' : ' AS s'} (${cols}) VALUES (${vals}) `;
    if (dialect === 'mysql') {
      // Values bound again rather than VALUES(col), which MySQL 8.0.20+ deprecates and MariaDB's alias syntax lacks.
      sql += `ON DUPLICATE KEY UPDATE ${RECORD_COLUMNS.map((c, i) => `${c} = ${q.p(values[i])}`).join(', ')}`;
    } else {
      sql += `ON CONFLICT (id) DO UPDATE SET ${RECORD_COLUMNS.map((c) => `${c} = excluded.${c}`).join(', ')}`;
    }
    await this.run(sql, q.params, true);
  }

  /** Whether `token` holds a live lease on `id` (used only to disambiguate MySQL's row counts). */
  private async holds(id: string, token: string): Promise<boolean> {
    const q = this.sql();
    const { records } = await this.run(
      `SELECT id FROM ${this.table} WHERE id = ${q.p(id)} AND lock_token = ${q.p(token)} AND lock_expires_at > ${DB_NOW_MS[this.requireDialect()]}`,
      q.params,
    );
    return records.length === 1;
  }

  /**
   * `user_id = ?` (index) plus, on MySQL, a byte comparison: utf8mb4_bin is PAD SPACE, so
   * `'alice'` would match `'alice '` and "sign out everywhere" could reach another user.
   */
  private userMatch(q: Binder, userId: string): string {
    const base = `user_id = ${q.p(userId)}`;
    return this.dialect === 'mysql' ? `${base} AND CAST(user_id AS BINARY) = CAST(${q.p(userId)} AS BINARY)` : base;
  }

  private sql(): Binder {
    return new Binder(this.requireDialect());
  }

  private requireDialect(): Dialect {
    if (this.dialect === null || this.dataSource === null) {
      throw new SessionException(this.closed ? 'The database session driver was closed.' : 'The database session driver is not open: call open() first (the SessionModule does).');
    }
    return this.dialect;
  }

  /**
   * Runs one statement on a pooled connection, returned to the pool right after; transient
   * deadlocks are retried. `byId`: a single-row statement by primary key whose text is fixed for
   * the table, so on PostgreSQL it may be a named prepared statement (its generic plan is always
   * the primary-key lookup).
   */
  private async run(sql: string, params: unknown[], byId = false): Promise<Result> {
    const dialect = this.requireDialect();
    const ds = this.dataSource!;
    for (let attempt = 1; ; attempt++) {
      try {
        const pool = dialect === 'postgres' ? pgPoolOf(ds) : null;
        if (pool) return await this.runOnPgPool(pool, sql, params, byId);
        // better-sqlite3 runs synchronously (its busy timeout bounds it); a network database gets a deadline.
        if (dialect === 'sqlite') return await runOnQueryRunner(ds, sql, params);
        return await withDeadline(runOnQueryRunner(ds, sql, params), this.statementTimeoutMs, dialect);
      } catch (err) {
        if (err instanceof SessionException) throw err;
        if (isConnectionLoss(err)) throw connectionLost(dialect, err);
        // PostgreSQL's statement_timeout (set on the pool built from a URL) cancelled it.
        if (errorCode(err) === PG_QUERY_CANCELED) throw statementTimedOut(dialect, this.statementTimeoutMs);
        if (attempt < MAX_ATTEMPTS && isTransient(err)) continue;
        throw new SessionDatabaseError(err);
      }
    }
  }

  /**
   * PostgreSQL: straight on the DataSource's `pg.Pool` (the one TypeORM's query runners borrow
   * from), without a QueryRunner per statement, its logger and its subscribers' query events.
   * Named statements are parsed and planned once per connection, which saves PostgreSQL about
   * 40 % of its CPU per locked request (two statements: lease, then write + release).
   */
  private async runOnPgPool(pool: PgPool, sql: string, params: unknown[], byId: boolean): Promise<Result> {
    const timeout = this.statementTimeoutMs;
    const started = Date.now();
    // Always with the deadline: an idle connection counted now may go to another call of this tick.
    const client = await withDeadline(pool.connect(), timeout, 'postgres', (late) => late.release());
    // A statement gets what the wait for its connection (and a failed first try) left of the deadline.
    const left = (): number => Math.max(1, timeout - (Date.now() - started));
    // pg-pool listens for a pooled connection's errors only while it is idle: without a listener
    // of ours, a connection that drops during the statement emits an 'error' nobody handles,
    // which ends the process. The statement's own promise rejects as well; that is what we report.
    let broken: Error | undefined;
    const onError = (err: Error): void => {
      broken ??= err;
    };
    client.on('error', onError);
    try {
      const name = byId && this.prepare ? this.statementName(sql) : undefined;
      try {
        // query_timeout: node-postgres fails the statement after it; the connection is then closed below.
        return pgResult(await client.query({ name, text: sql, values: params, query_timeout: left() }));
      } catch (err) {
        if (name === undefined || !PREPARED_STATEMENT_TROUBLE.has(errorCode(err) ?? '')) throw err;
        this.prepare = false;
        return pgResult(await client.query({ text: sql, values: params, query_timeout: left() }));
      }
    } catch (err) {
      // Failed without a server's answer (lost, timed out, anything client-side): the connection
      // may still be busy, so it is closed rather than pooled again.
      if (errorCode(err) === undefined || isConnectionLoss(err)) broken ??= err instanceof Error ? err : new Error(String(err));
      if (err instanceof Error && err.message === PG_QUERY_TIMEOUT) throw statementTimedOut('postgres', timeout);
      throw err;
    } finally {
      client.removeListener('error', onError);
      client.release(broken);
    }
  }

  /** A name determined by the text alone: node-postgres refuses one name for two texts on a connection, and drivers of other tables may share the pool. */
  private statementName(sql: string): string {
    let name = this.statementNames.get(sql);
    if (name === undefined) {
      name = `ml_session_stmt_${createHash('sha256').update(sql).digest('hex').slice(0, 32)}`;
      this.statementNames.set(sql, name);
    }
    return name;
  }
}

/** MySQL/MariaDB and SQLite: through a TypeORM QueryRunner (better-sqlite3's caches its prepared statements). */
async function runOnQueryRunner(ds: DataSource, sql: string, params: unknown[]): Promise<Result> {
  let runner: QueryRunner | null = null;
  try {
    runner = ds.createQueryRunner();
    const result = (await runner.query(sql, params, true)) as { records?: Array<Record<string, unknown>>; affected?: number };
    return { records: result.records ?? [], affected: result.affected };
  } finally {
    if (runner && !runner.isReleased) await runner.release();
  }
}

/** The `pg.Pool` of a PostgreSQL DataSource (its master, with replication), or `null` if it does not look like one. */
function pgPoolOf(ds: DataSource): PgPool | null {
  const pool = (ds.driver as unknown as { master?: unknown }).master;
  return typeof pool === 'object' && pool !== null && typeof (pool as PgPool).connect === 'function' ? (pool as PgPool) : null;
}

function pgResult(raw: { rows?: Array<Record<string, unknown>>; rowCount?: number | null }): Result {
  return { records: raw.rows ?? [], affected: raw.rowCount ?? undefined };
}

/**
 * A failed statement, without TypeORM's `query`/`parameters` (they hold session IDs and
 * payloads, which must never reach a log). `code` is the database's error code.
 */
export class SessionDatabaseError extends Error {
  readonly code: string | undefined;
  constructor(err: unknown) {
    super(`Session table query failed: ${redact(errorText(err))}`);
    this.name = 'SessionDatabaseError';
    this.code = errorCode(err);
  }
}

/** Collects bound parameters and renders the dialect's placeholder for each. */
class Binder {
  readonly params: unknown[] = [];
  constructor(private readonly dialect: Dialect) {}
  p(value: unknown): string {
    this.params.push(value);
    return this.dialect === 'postgres' ? `$${this.params.length}` : '?';
  }
}

/** The session table's SQL dialect for a TypeORM `DataSource` type. */
export function databaseDialectOf(type: string): Dialect {
  switch (type) {
    case 'postgres':
      return 'postgres';
    case 'mysql':
    case 'mariadb':
      return 'mysql';
    case 'better-sqlite3':
      return 'sqlite';
    default:
      throw new SessionException(`The database session driver supports TypeORM types postgres, mysql, mariadb and better-sqlite3, not "${type}".`);
  }
}

function quoteTable(dialect: Dialect, table: string): { table: string } {
  const [, schema, base] = SESSIONS_TABLE_NAME.exec(table)!;
  const q = (s: string): string => (dialect === 'mysql' ? `\`${s}\`` : `"${s}"`);
  return { table: schema ? `${q(schema)}.${q(base)}` : q(base) };
}

/** Builds DataSource options from `postgres://`, `postgresql://`, `mysql://`, `mariadb://` or `sqlite:path` / `sqlite://path`. */
export function dataSourceOptionsFromUrl(url: string): DataSourceOptions {
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1]?.toLowerCase();
  // Our own DataSource logs nothing: TypeORM's query log would print session IDs and payloads.
  const common = { entities: [], synchronize: false, logging: false as const };
  switch (scheme) {
    case 'postgres':
    case 'postgresql':
      // A server that does not answer fails open() after 10 s instead of the OS's connect timeout (minutes).
      return { type: 'postgres', url, connectTimeoutMS: 10_000, ...common };
    case 'mysql':
    case 'mariadb':
      // utf8mb4 on the connection too, or 4-byte characters (emoji) in payloads fail to insert.
      return { type: 'mysql', url: url.replace(/^mariadb:/i, 'mysql:'), charset: 'utf8mb4_bin', ...common };
    case 'sqlite': {
      const database = url.replace(/^sqlite:(\/\/)?/i, '');
      if (database === '') throw new SessionException('database.url "sqlite:" needs a path: sqlite:./storage/sessions.sqlite or sqlite:///abs/path.sqlite.');
      // WAL lets readers run beside the writer; processes sharing the file wait up to 5 s for its write lock.
      return { type: 'better-sqlite3', database, enableWAL: database !== ':memory:', timeout: 5000, ...common };
    }
    default:
      throw new SessionException('database.url must start with postgres://, postgresql://, mysql://, mariadb:// or sqlite: (e.g. sqlite:./storage/sessions.sqlite).');
  }
}

function isDataSource(value: unknown): value is DataSource {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return typeof v.initialize === 'function' && typeof v.createQueryRunner === 'function' && typeof v.options === 'object' && v.options !== null;
}

function recordValues(record: SessionRecord): unknown[] {
  const m = record.meta;
  return [m.userId, m.ipAddress, m.userAgent, record.payload, m.csrfToken, ms(m.createdAt, 'createdAt'), ms(m.lastActivity, 'lastActivity'), ms(m.expiresAt, 'expiresAt'), ms(record.evictAt, 'evictAt', true)];
}

/** BIGINT columns take whole milliseconds; fractional timeouts are allowed by the options. */
function ms(value: number, name: string, up = false): number {
  if (!Number.isFinite(value)) throw new SessionException(`Session record ${name} must be a finite epoch-ms number.`);
  return up ? Math.ceil(value) : Math.round(value);
}

/** A row as a record, or `null` for a placeholder or an expired record. */
function liveRecord(row: Record<string, unknown>): SessionRecord | null {
  if (row.payload === null || row.payload === undefined) return null;
  const record = toRecord(row);
  return record.evictAt > Date.now() ? record : null;
}

function toRecord(row: Record<string, unknown>): SessionRecord {
  // pg and mysql2 return BIGINT as strings; epoch ms stay far below 2^53.
  const meta: SessionMeta = {
    createdAt: Number(row.created_at),
    lastActivity: Number(row.last_activity),
    expiresAt: Number(row.expires_at),
    userId: str(row.user_id),
    ipAddress: str(row.ip_address),
    userAgent: str(row.user_agent),
    csrfToken: str(row.csrf_token),
  };
  return { payload: String(row.payload), meta, evictAt: Number(row.evict_at) };
}

function str(value: unknown): string | null {
  return value === null || value === undefined ? null : String(value);
}

function assertId(id: string): void {
  if (!isValidSessionId(id)) throw new SessionException('Refusing a malformed session ID before it reaches storage.');
}

function lockLost(): SessionLockException {
  return new SessionLockException('The session lock expired (or the session was destroyed) before the write; the change was not saved. Raise lock.ttl if requests run this long.');
}

function driverError(err: unknown): Record<string, unknown> | null {
  if (typeof err !== 'object' || err === null) return null;
  const inner = (err as { driverError?: unknown }).driverError;
  return (typeof inner === 'object' && inner !== null ? inner : err) as Record<string, unknown>;
}

function errorCode(err: unknown): string | undefined {
  const code = driverError(err)?.code;
  return code === undefined || code === null ? undefined : String(code);
}

function errorText(err: unknown): string {
  const inner = driverError(err);
  const message = typeof inner?.message === 'string' ? inner.message : err instanceof Error ? err.message : String(err);
  const code = errorCode(err);
  return code && !message.includes(code) ? `${code}: ${message}` : message;
}

/** Long quoted values in driver messages can be session IDs or payload fragments (MySQL quotes them in some errors). */
function redact(message: string): string {
  return message.replace(/'[^']{24,}'/g, "'[redacted]'");
}

/** How node-postgres words a lost or unusable connection (it gives such errors no code). */
const PG_CONNECTION_LOST = /^(Connection terminated|Query read timeout|Client has encountered a connection error|Client was closed|timeout exceeded when trying to connect)/;

/**
 * The connection failed rather than the statement: dropped, refused or timed out (a socket
 * error code, node-postgres' messages, a fatal mysql2 error), or a connection-class SQL error
 * (SQLSTATE 08…, a PostgreSQL shutdown 57P01–03). Anything else (SQL errors, bugs) stays a
 * `SessionDatabaseError`, which the session manager logs.
 */
function isConnectionLoss(err: unknown): boolean {
  const inner = driverError(err);
  if (inner?.fatal === true) return true;
  const code = errorCode(err);
  if (code !== undefined) return /^(08|57P0[123])/.test(code) || /^E[A-Z]+$/.test(code) || code.startsWith('PROTOCOL_');
  return typeof inner?.message === 'string' && PG_CONNECTION_LOST.test(inner.message);
}

function connectionLost(dialect: Dialect, err: unknown): SessionStoreUnavailableException {
  return new SessionStoreUnavailableException(
    `The session database (${dialect}) did not answer: ${redact(errorText(err))}. Retry shortly, and check that the server is reachable.`,
    // Not the raw error: TypeORM's carries the statement's parameters (and mysql2's the SQL with
    // values inlined), which an application's logger would print along with the cause.
    { cause: new SessionDatabaseError(err) },
  );
}

/** SQLSTATE query_canceled: what PostgreSQL answers when its `statement_timeout` passes. */
const PG_QUERY_CANCELED = '57014';

/** What node-postgres rejects a statement with when its `query_timeout` passes. */
const PG_QUERY_TIMEOUT = 'Query read timeout';

function statementTimedOut(dialect: Dialect, ms: number): SessionStoreUnavailableException {
  return new SessionStoreUnavailableException(
    `The session database (${dialect}) did not answer within ${ms} ms (database.statementTimeout); retry shortly, and check that the server is reachable and not overloaded.`,
  );
}

/**
 * `promise`, or a 503 after `ms`. A statement that loses the race is not cancelled; `onLate`
 * gets what it resolves to later (a pool connection to give back).
 */
function withDeadline<T>(promise: Promise<T>, ms: number, dialect: Dialect, onLate?: (late: T) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      reject(statementTimedOut(dialect, ms));
    }, ms);
    promise.then(
      (value) => {
        clearTimeout(timer);
        if (!timedOut) resolve(value);
        else onLate?.(value);
      },
      (err: unknown) => {
        clearTimeout(timer);
        if (!timedOut) reject(err);
      },
    );
  });
}

function isTransient(err: unknown): boolean {
  const code = errorCode(err);
  // PostgreSQL deadlock / serialization failure; MySQL deadlock.
  return code === '40P01' || code === '40001' || code === 'ER_LOCK_DEADLOCK';
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
