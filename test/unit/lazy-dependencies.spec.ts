import { describe, it, expect } from '@jest/globals';
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** A resolve hook that makes any import of typeorm or ioredis fail loudly. */
const HOOK = `export async function resolve(specifier, context, next) {
  if (/^(typeorm|ioredis)(\\/|$)/.test(specifier)) throw new Error('LOADED ' + specifier);
  return next(specifier, context);
}`;

async function importWithHook(code: string): Promise<string> {
  const script = `import { register } from 'node:module';
register('data:text/javascript,' + encodeURIComponent(${JSON.stringify(HOOK)}));
${code}`;
  try {
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], { cwd: resolve('.') });
    return stdout;
  } catch (err) {
    return String((err as { stderr?: string }).stderr ?? err);
  }
}

describe('typeorm and ioredis are loaded only by the driver that needs them', () => {
  const index = pathToFileURL(resolve('dist/lib/index.js')).href;

  it('importing the package and running the memory driver loads neither', async () => {
    const out = await importWithHook(`const lib = await import(${JSON.stringify(index)});
const d = await lib.DriverFactory.create({ driver: 'memory' });
await d.open();
console.log('ok', typeof lib.SessionModule, typeof lib.RedisDriver, typeof lib.DatabaseDriver);`);
    expect(out.trim()).toBe('ok function function function');
  });

  it('the hook really blocks them (control), so the test above can fail', async () => {
    const out = await importWithHook(`const lib = await import(${JSON.stringify(index)});
const d = await lib.DriverFactory.create({ driver: 'database', database: { url: 'sqlite::memory:' } });
await d.open();
console.log('opened');`);
    expect(out).toMatch(/LOADED typeorm/);
  });
});
