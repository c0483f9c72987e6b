/**
 * Cross-process locking of the database driver: child processes build the driver from JSON
 * options (`{ driver: 'database', database: { url, table } }`) and share one session row.
 * Each dialect gets its own random table, created by the TypeORM migration and dropped after.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataSource } from 'typeorm';
import { dataSourceOptionsFromUrl } from '../../lib/drivers/database.driver.js';
import { createSessionsTableSql, dropSessionsTableSql, type SessionsTableDialect } from '../../migrations/create-sessions-table.migration.js';
import { describeMultiProcessLocking } from './multiprocess-harness.js';

const URLS: Record<Exclude<SessionsTableDialect, 'sqlite'>, string> = {
  postgres: process.env.TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
  mysql: process.env.TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test',
};

for (const dialect of ['postgres', 'mysql', 'sqlite'] as const) {
  describeMultiProcessLocking(`database-${dialect}`, async () => {
    const table = `sessions_${randomBytes(6).toString('hex')}`;
    const dir = dialect === 'sqlite' ? mkdtempSync(join(tmpdir(), 'ml-sess-mp-')) : null;
    const url = dialect === 'sqlite' ? `sqlite:${join(dir!, 'sessions.sqlite')}` : URLS[dialect];
    const admin = new DataSource(dataSourceOptionsFromUrl(url));
    await admin.initialize();
    for (const sql of createSessionsTableSql(dialect, table)) await admin.query(sql);
    return {
      options: { driver: 'database', database: { url, table } },
      cleanup: async () => {
        try {
          for (const sql of dropSessionsTableSql(dialect, table)) await admin.query(sql);
        } finally {
          await admin.destroy();
          if (dir) rmSync(dir, { recursive: true, force: true });
        }
      },
    };
  });
}
