/**
 * The sample app as a real process on every driver, configured only through the environment
 * (SESSION_DRIVER, DATABASE_URL, SESSION_REDIS_URL, SESSION_REDIS_CLUSTER_NODES): a visit counter
 * that survives requests, a sign-in, and the store actually holding the session.
 */
import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import Database from 'better-sqlite3';
import { DataSource } from 'typeorm';
import { createSessionsTableSql, dropSessionsTableSql } from '../../migrations/create-sessions-table.migration.js';
import { freePort, startRedisCluster, type RedisClusterHandle } from '../support/redis-cluster.js';

const MAIN = resolve('dist/sample-app/main.js');

async function startSample(env: Record<string, string>): Promise<{ base: string; stop(): void }> {
  const port = await freePort();
  const child: ChildProcess = spawn(process.execPath, [MAIN], { env: { ...process.env, ...env, PORT: String(port) }, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  await new Promise<void>((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`sample app did not start: ${log}`)), 20_000);
    child.stdout!.on('data', (d: Buffer) => d.toString().includes('Sample app running') && (clearTimeout(timer), ok()));
    child.on('exit', (code) => fail(new Error(`sample app exited ${code}: ${log}`)));
  });
  return { base: `http://127.0.0.1:${port}`, stop: () => void child.kill('SIGTERM') };
}

/** Two visits and a sign-in, like a browser: the counter and the sign-in must persist in the store. */
async function exercise(base: string): Promise<void> {
  const headers = { 'user-agent': 'sample-test' };
  const first = await fetch(base + '/', { headers });
  expect(await first.text()).toContain('Visits in this session: 1');
  let cookie = first.headers.getSetCookie().find((c) => c.startsWith('ML_SESS='))!.split(';')[0];
  const second = await fetch(base + '/', { headers: { ...headers, cookie } });
  const html = await second.text();
  expect(html).toContain('Visits in this session: 2');
  const token = /name="_token" value="([^"]+)"/.exec(html)![1];
  const login = await fetch(base + '/login', {
    method: 'POST',
    redirect: 'manual',
    headers: { ...headers, cookie, 'content-type': 'application/x-www-form-urlencoded' },
    body: `_token=${encodeURIComponent(token)}&name=Lin`,
  });
  expect(login.status).toBe(303);
  const rotated = login.headers.getSetCookie().find((c) => c.startsWith('ML_SESS='))!.split(';')[0];
  expect(rotated).not.toBe(cookie); // regenerate() on sign-in
  cookie = rotated;
  const home = await (await fetch(base + '/', { headers: { ...headers, cookie } })).text();
  expect(home).toContain('Welcome, Lin!');
  expect(home).toContain('Visits in this session: 3');
}

describe('sample app on every driver, configured by environment variables', () => {
  const dirs: string[] = [];
  let cluster: RedisClusterHandle | undefined;
  beforeAll(() => {
    if (!existsSync(MAIN)) throw new Error('run "npm run build" first (npm test does)');
  });
  afterAll(async () => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
    await cluster?.stop();
  });

  it('file (the default): sessions are files in SESSION_FILE_PATH', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ml-sample-file-'));
    dirs.push(dir);
    const app = await startSample({ SESSION_FILE_PATH: dir });
    try {
      await exercise(app.base);
      expect(readdirSync(dir).length).toBeGreaterThan(0);
    } finally {
      app.stop();
    }
  }, 60_000);

  it('database on SQLite (DATABASE_URL=sqlite:…)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ml-sample-sqlite-'));
    dirs.push(dir);
    const file = join(dir, 'sessions.sqlite');
    const db = new Database(file);
    for (const sql of createSessionsTableSql('sqlite')) db.exec(sql);
    const app = await startSample({ SESSION_DRIVER: 'database', DATABASE_URL: `sqlite:${file}` });
    try {
      await exercise(app.base);
      expect((db.prepare('SELECT COUNT(*) AS n FROM sessions WHERE payload IS NOT NULL').get() as { n: number }).n).toBeGreaterThan(0);
    } finally {
      app.stop();
      db.close();
    }
  }, 60_000);

  it.each([
    ['postgres', 'postgres://postgres@127.0.0.1:5432/test'],
    ['mysql', 'mysql://root@127.0.0.1:3306/test'],
  ] as const)('database on %s (DATABASE_URL, SESSION_TABLE)', async (dialect, url) => {
    const table = `sample_${randomBytes(4).toString('hex')}`;
    const ds = new DataSource(dialect === 'postgres' ? { type: 'postgres', url } : { type: 'mysql', url });
    await ds.initialize();
    try {
      for (const sql of createSessionsTableSql(dialect, table)) await ds.query(sql);
      const app = await startSample({ SESSION_DRIVER: 'database', DATABASE_URL: url, SESSION_TABLE: table });
      try {
        await exercise(app.base);
        const rows = (await ds.query(`SELECT COUNT(*) AS n FROM ${table} WHERE payload IS NOT NULL`)) as Array<{ n: string | number }>;
        expect(Number(rows[0].n)).toBeGreaterThan(0);
      } finally {
        app.stop();
      }
    } finally {
      for (const sql of dropSessionsTableSql(dialect, table)) await ds.query(sql).catch(() => undefined);
      await ds.destroy();
    }
  }, 60_000);

  it('redis (SESSION_REDIS_URL)', async () => {
    const app = await startSample({ SESSION_DRIVER: 'redis', SESSION_REDIS_URL: 'redis://127.0.0.1:6379/0' });
    try {
      await exercise(app.base);
    } finally {
      app.stop();
    }
  }, 60_000);

  it('redis Cluster (SESSION_REDIS_CLUSTER_NODES)', async () => {
    cluster = await startRedisCluster(3);
    const nodes = cluster.nodes.map((n) => `${n.host}:${n.port}`).join(',');
    const app = await startSample({ SESSION_DRIVER: 'redis', SESSION_REDIS_CLUSTER_NODES: nodes });
    try {
      await exercise(app.base);
    } finally {
      app.stop();
    }
  }, 90_000);
});
