/**
 * TypeORM migration that creates the table of the database session driver.
 *
 * Add it to your DataSource's `migrations` list; the package exports it, compiled, as
 * `@monkeyslegion/nestjs-session/migrations`:
 *
 * ```ts
 * import { CreateSessionsTable1700000000000, createSessionsTableMigration } from '@monkeyslegion/nestjs-session/migrations';
 * new DataSource({ ..., migrations: [CreateSessionsTable1700000000000] });
 * // another table name (must match the driver's `database.table`):
 * new DataSource({ ..., migrations: [createSessionsTableMigration('app_sessions')] });
 * ```
 *
 * It supports PostgreSQL, MySQL/MariaDB and SQLite (better-sqlite3). The DDL is the same as
 * `migrations/postgres.sql`, `mysql.sql` and `sqlite.sql` (a test keeps them in sync), and the
 * column choices are explained in docs/drivers/database.md. It imports TypeORM types and the driver's own table-name and dialect rules.
 */
import type { MigrationInterface, QueryRunner } from 'typeorm';
// The driver file loads typeorm only when it opens: importing its helpers here costs nothing.
import { SESSIONS_TABLE_NAME, databaseDialectOf } from '../lib/drivers/database.driver.js';

/** The SQL dialects the session table exists for. */
export type SessionsTableDialect = 'postgres' | 'mysql' | 'sqlite';

/** Maps a TypeORM `DataSource` `type` to the session table's dialect; throws for a database the driver does not support. */
export function sessionsTableDialectOf(type: string): SessionsTableDialect {
  return databaseDialectOf(type);
}

function names(dialect: SessionsTableDialect, table: string): { table: string; userIdx: string; evictIdx: string; sqliteIndex: (idx: string) => string } {
  const m = SESSIONS_TABLE_NAME.exec(table);
  if (!m) {
    throw new Error(`Invalid session table name "${table}": use letters, digits and underscores (optionally "schema.table"), starting with a letter or underscore, at most 48 characters.`);
  }
  const q = (s: string): string => (dialect === 'mysql' ? `\`${s}\`` : `"${s}"`);
  const [, schema, base] = m;
  return {
    table: schema ? `${q(schema)}.${q(base)}` : q(base),
    // PostgreSQL and SQLite index names are per schema, not per table: derive them from the table name.
    userIdx: q(`${base}_user_id_idx`),
    evictIdx: q(`${base}_evict_at_idx`),
    // SQLite takes the schema on the index's name and a bare table name (`ON "main"."t"` is a syntax error).
    sqliteIndex: (idx) => `CREATE INDEX ${schema ? `${q(schema)}.` : ''}${idx} ON ${q(base)}`,
  };
}

/**
 * The statements that create the session table and its indexes.
 * `table` defaults to `sessions`; it is validated and quoted.
 */
export function createSessionsTableSql(dialect: SessionsTableDialect, table = 'sessions'): string[] {
  const n = names(dialect, table);
  // With a schema-qualified table, PostgreSQL's CREATE INDEX takes a bare index name and puts it in the table's schema.
  switch (dialect) {
    case 'postgres':
      return [
        `CREATE TABLE ${n.table} (
  id VARCHAR(64) NOT NULL PRIMARY KEY,
  user_id VARCHAR(255) NULL,
  ip_address VARCHAR(255) NULL,
  user_agent TEXT NULL,
  payload TEXT NULL,
  csrf_token VARCHAR(255) NULL,
  created_at BIGINT NOT NULL,
  last_activity BIGINT NOT NULL,
  expires_at BIGINT NOT NULL,
  evict_at BIGINT NOT NULL,
  lock_token VARCHAR(64) NULL,
  lock_expires_at BIGINT NULL
)`,
        `CREATE INDEX ${n.userIdx} ON ${n.table} (user_id)`,
        `CREATE INDEX ${n.evictIdx} ON ${n.table} (evict_at)`,
      ];
    case 'mysql':
      return [
        `CREATE TABLE ${n.table} (
  id VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  user_id VARCHAR(255) NULL,
  ip_address VARCHAR(255) NULL,
  user_agent TEXT NULL,
  payload MEDIUMTEXT NULL,
  csrf_token VARCHAR(255) NULL,
  created_at BIGINT NOT NULL,
  last_activity BIGINT NOT NULL,
  expires_at BIGINT NOT NULL,
  evict_at BIGINT NOT NULL,
  lock_token VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NULL,
  lock_expires_at BIGINT NULL,
  PRIMARY KEY (id),
  INDEX ${n.userIdx} (user_id),
  INDEX ${n.evictIdx} (evict_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`,
      ];
    case 'sqlite':
      return [
        `CREATE TABLE ${n.table} (
  id TEXT NOT NULL PRIMARY KEY,
  user_id TEXT NULL,
  ip_address TEXT NULL,
  user_agent TEXT NULL,
  payload TEXT NULL,
  csrf_token TEXT NULL,
  created_at INTEGER NOT NULL,
  last_activity INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  evict_at INTEGER NOT NULL,
  lock_token TEXT NULL,
  lock_expires_at INTEGER NULL
)`,
        `${n.sqliteIndex(n.userIdx)} (user_id)`,
        `${n.sqliteIndex(n.evictIdx)} (evict_at)`,
      ];
  }
}

/** The statement that drops the session table (its indexes go with it). */
export function dropSessionsTableSql(dialect: SessionsTableDialect, table = 'sessions'): string[] {
  return [`DROP TABLE ${names(dialect, table).table}`];
}

async function run(queryRunner: QueryRunner, statements: (dialect: SessionsTableDialect) => string[]): Promise<void> {
  const dialect = sessionsTableDialectOf(String(queryRunner.connection.options.type));
  for (const sql of statements(dialect)) await queryRunner.query(sql);
}

/**
 * A migration class for a custom table name (the one you give the driver as `database.table`).
 * `timestamp` orders it among your migrations; TypeORM requires a distinct name per migration,
 * so each table gets `CreateSessionsTable_<table><timestamp>`.
 */
export function createSessionsTableMigration(table = 'sessions', timestamp = 1700000000000): new () => MigrationInterface {
  names('postgres', table); // fail at start-up, not in the middle of a migration run
  if (!Number.isInteger(timestamp) || String(timestamp).length !== 13) {
    throw new Error(`Migration timestamp ${timestamp} must be a 13-digit epoch-ms integer (TypeORM reads the last 13 characters of the name).`);
  }
  const name = table === 'sessions' ? `CreateSessionsTable${timestamp}` : `CreateSessionsTable_${table.replace('.', '_')}${timestamp}`;
  return class implements MigrationInterface {
    name = name;
    async up(queryRunner: QueryRunner): Promise<void> {
      await run(queryRunner, (d) => createSessionsTableSql(d, table));
    }
    async down(queryRunner: QueryRunner): Promise<void> {
      await run(queryRunner, (d) => dropSessionsTableSql(d, table));
    }
  };
}

/** Creates the default `sessions` table. */
export class CreateSessionsTable1700000000000 implements MigrationInterface {
  name = 'CreateSessionsTable1700000000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await run(queryRunner, (d) => createSessionsTableSql(d));
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await run(queryRunner, (d) => dropSessionsTableSql(d));
  }
}
