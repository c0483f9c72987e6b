/**
 * Multi-process locking: separate Node processes (not async tasks) share one session through
 * a real driver. Each driver's spec calls `describeMultiProcessLocking` with its JSON options.
 * Needs the compiled worker: `npm test` builds to dist/ before Jest runs.
 */
import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { DriverFactory } from '../../lib/drivers/driver.factory.js';
import type { SessionDriver } from '../../lib/contracts/session-driver.interface.js';
import type { SessionModuleOptions } from '../../lib/contracts/session-options.interface.js';
import { newId } from '../support/records.js';

const WORKER = resolve('dist/test/multiprocess/lock-worker.js');

interface Setup {
  options: SessionModuleOptions;
  cleanup(): Promise<void>;
}

function startWorker(options: SessionModuleOptions, args: string[], env: Record<string, string> = {}): { child: ChildProcess; done: Promise<string> } {
  const child = spawn(process.execPath, [WORKER, ...args], {
    env: { ...process.env, ML_WORKER_OPTIONS: JSON.stringify(options), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const done = new Promise<string>((resolveDone, reject) => {
    child.on('exit', (code, signal) => (code === 0 ? resolveDone(out) : reject(new Error(`worker exited ${code ?? signal}: ${err}`))));
  });
  return { child, done };
}

function waitForLine(child: ChildProcess, line: string, timeoutMs: number): Promise<void> {
  return new Promise((resolveLine, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${line} within ${timeoutMs} ms`)), timeoutMs);
    let buf = '';
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      if (buf.includes(line)) {
        clearTimeout(timer);
        resolveLine();
      }
    });
  });
}

async function readCounter(driver: SessionDriver, id: string): Promise<number> {
  const record = await driver.read(id);
  return record ? (JSON.parse(record.payload) as { data: { counter: number } }).data.counter : 0;
}

export function describeMultiProcessLocking(name: string, setup: () => Promise<Setup>): void {
  describe(`multi-process locking: ${name}`, () => {
    let ctx: Setup;
    let driver: SessionDriver;
    const children: ChildProcess[] = [];

    beforeAll(async () => {
      if (!existsSync(WORKER)) throw new Error(`${WORKER} is missing: run "npm run build" (npm test does) before Jest.`);
      ctx = await setup();
      driver = await DriverFactory.create(ctx.options);
      await driver.open();
    });
    afterAll(async () => {
      for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
      await driver?.close();
      await ctx?.cleanup();
    });

    it('4 processes doing read-modify-write cycles lose no update', async () => {
      const id = newId();
      const workers = Array.from({ length: 4 }, () => startWorker(ctx.options, ['increment', id, '15']));
      children.push(...workers.map((w) => w.child));
      await Promise.all(workers.map((w) => w.done));
      expect(await readCounter(driver, id)).toBe(60);
    }, 60_000);

    it('a holder killed with SIGKILL blocks the others only until the lock ttl passes', async () => {
      const id = newId();
      const ttlMs = 1500;
      const holder = startWorker(ctx.options, ['hold', id, '0'], { ML_WORKER_TTL_MS: String(ttlMs) });
      children.push(holder.child);
      holder.done.catch(() => {}); // it is killed on purpose
      await waitForLine(holder.child, 'LOCKED', 20_000);
      const lockedAt = Date.now();
      holder.child.kill('SIGKILL');
      const workers = Array.from({ length: 3 }, () => startWorker(ctx.options, ['increment', id, '5']));
      children.push(...workers.map((w) => w.child));
      await Promise.all(workers.map((w) => w.done));
      // Nobody could write before the dead holder's lock expired...
      expect(Date.now() - lockedAt).toBeGreaterThanOrEqual(ttlMs - 100);
      // ...and afterwards the survivors carried on without losing an update.
      expect(await readCounter(driver, id)).toBe(15);
    }, 60_000);
  });
}
