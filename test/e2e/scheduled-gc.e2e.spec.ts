import { describe, it, expect } from '@jest/globals';
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { MemoryDriver } from '../../lib/drivers/memory.driver.js';
import { createTestApp } from '../support/test-app.js';
import { makeRecord, newId, sleep } from '../support/records.js';

/** A real MemoryDriver that counts how often the module collected garbage. */
class CountingDriver extends MemoryDriver {
  runs = 0;
  override async gc(): Promise<number> {
    this.runs++;
    return super.gc();
  }
}

describe('scheduled garbage collection', () => {
  it('runs on the interval, removes expired records, and stops on application shutdown', async () => {
    const driver = new CountingDriver();
    const t = await createTestApp('express', { driver, gc: { interval: 0.1 } });
    const dead = newId();
    const live = newId();
    await driver.write(dead, makeRecord({ ttlMs: 50 }));
    await driver.write(live, makeRecord({ ttlMs: 60_000 }));
    await sleep(450);
    expect(driver.runs).toBeGreaterThanOrEqual(2);
    expect(await driver.read(live)).not.toBeNull();
    // Nothing left for a manual sweep: the scheduled one removed the dead record.
    expect(await driver.gc()).toBe(0);
    await t.close();
    const after = driver.runs;
    await sleep(350);
    expect(driver.runs).toBe(after);
  });

  it('gc.interval: 0 switches it off', async () => {
    const driver = new CountingDriver();
    const t = await createTestApp('express', { driver, gc: { interval: 0 } });
    await sleep(300);
    expect(driver.runs).toBe(0);
    await t.close();
  });

  it('the timer never keeps a process alive (unref)', async () => {
    const lib = pathToFileURL(resolve('dist/lib/index.js')).href;
    const script = [
      "import 'reflect-metadata';",
      "import { NestFactory } from '@nestjs/core';",
      "import { Module } from '@nestjs/common';",
      `const { SessionModule } = await import(${JSON.stringify(lib)});`,
      "class M {}",
      "Module({ imports: [SessionModule.forRoot({ driver: 'memory', gc: { interval: 1 } })] })(M);",
      'await NestFactory.createApplicationContext(M, { logger: false });',
      "console.log('started');",
    ].join('\n');
    const started = Date.now();
    const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script], { cwd: resolve('.'), timeout: 15_000 });
    expect(stdout.trim()).toBe('started');
    // It exited by itself, with the 1 s GC timer still scheduled and the app never closed.
    expect(Date.now() - started).toBeLessThan(15_000);
  });
});
