import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { execFile } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import { DatabaseDriver } from '../../lib/drivers/database.driver.js';
import { makeRecord, newId } from '../support/records.js';

const run = promisify(execFile);
const BIN = resolve('dist/lib/cli/main.js');

async function cli(args: string[], env: Record<string, string> = {}, bin = BIN): Promise<{ code: number; out: string }> {
  try {
    const { stdout } = await run(process.execPath, [bin, ...args], { env: { ...process.env, ...env } });
    return { code: 0, out: stdout };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, out: e.stdout + e.stderr };
  }
}

describe('CLI (the package bin, run as a real process)', () => {
  let dir: string;
  beforeAll(() => {
    if (!existsSync(BIN)) throw new Error('run "npm run build" first (npm test does)');
    dir = mkdtempSync(join(tmpdir(), 'ml-cli-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('publish-config writes session.config.ts and never overwrites without --force', async () => {
    const target = join(dir, 'config');
    const first = await cli(['publish-config', '--dir', target]);
    expect(first.code).toBe(0);
    const file = join(target, 'session.config.ts');
    expect(readFileSync(file, 'utf8')).toMatch(/registerAs\('session'/);
    writeFileSync(file, '// my edits');
    const second = await cli(['publish-config', '--dir', target]);
    expect(second.code).toBe(1);
    expect(second.out).toMatch(/already exists; not overwritten/);
    expect(readFileSync(file, 'utf8')).toBe('// my edits');
    expect((await cli(['publish-config', '--dir', target, '--force'])).code).toBe(0);
    expect(readFileSync(file, 'utf8')).toMatch(/sessionOptionsFromEnv/);
  });

  it.each(['postgres', 'mysql', 'sqlite'])('migration --dialect %s prints the CREATE TABLE and indexes', async (dialect) => {
    const { code, out } = await cli(['migration', '--dialect', dialect, '--table', 'app_sessions']);
    expect(code).toBe(0);
    expect(out).toMatch(/CREATE TABLE[^;]*app_sessions/);
    expect(out).toMatch(/evict_at/);
    expect(out).toMatch(/INDEX[^;]*user_id/);
  });

  it('runs when started through a symlink, as npm installs the bin (node_modules/.bin)', async () => {
    const binDir = join(dir, 'node_modules', '.bin');
    mkdirSync(binDir, { recursive: true });
    const link = join(binDir, 'monkeyslegion-session');
    symlinkSync(BIN, link);
    const { code, out } = await cli(['migration', '--dialect', 'sqlite', '--table', 'via_link'], {}, link);
    expect(code).toBe(0);
    expect(out).toMatch(/CREATE TABLE[^;]*via_link/);
  });

  it('migration SQL for sqlite creates a table the database driver works with', async () => {
    const file = join(dir, 'mig.sqlite');
    const { out } = await cli(['migration', '--dialect', 'sqlite']);
    new Database(file).exec(out).close();
    const driver = new DatabaseDriver({ url: `sqlite:${file}` });
    await driver.open();
    const id = newId();
    await driver.write(id, makeRecord());
    expect(await driver.read(id)).not.toBeNull();
    await driver.close();
  });

  it('a bad dialect or command is refused with usage', async () => {
    expect((await cli(['migration', '--dialect', 'oracle'])).code).toBe(2);
    const r = await cli(['frobnicate']);
    expect(r.code).toBe(2);
    expect(r.out).toMatch(/usage: monkeyslegion-session/);
  });

  it('gc removes exactly the expired sessions of the configured store and prints the count', async () => {
    const file = join(dir, 'gc.sqlite');
    const { out: sql } = await cli(['migration', '--dialect', 'sqlite']);
    new Database(file).exec(sql).close();
    const driver = new DatabaseDriver({ url: `sqlite:${file}` });
    await driver.open();
    const live = newId();
    await driver.write(live, makeRecord({ ttlMs: 60_000 }));
    for (let i = 0; i < 3; i++) await driver.write(newId(), makeRecord({ ttlMs: -1000 }));
    await driver.close();
    const r = await cli(['gc'], { SESSION_DRIVER: 'database', DATABASE_URL: `sqlite:${file}` });
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/removed 3 expired session\(s\) from the database store/);
    const again = await cli(['gc'], { SESSION_DRIVER: 'database', DATABASE_URL: `sqlite:${file}` });
    expect(again.out).toMatch(/removed 0 expired/);
    const check = new DatabaseDriver({ url: `sqlite:${file}` });
    await check.open();
    expect(await check.read(live)).not.toBeNull();
    await check.close();
  });
});
