/**
 * A child process for the multi-process lock tests (run compiled, from dist/, by plain node).
 * argv: <mode: increment|hold> <sessionId> <count>; env ML_WORKER_OPTIONS: JSON SessionModuleOptions.
 * increment: `count` read-modify-write cycles under the lock, with an await between read and write.
 * hold: takes the lock, prints LOCKED, and never releases it (the parent SIGKILLs it).
 */
import { DriverFactory } from '../../lib/drivers/driver.factory.js';
import type { SessionModuleOptions } from '../../lib/contracts/session-options.interface.js';
import type { SessionRecord } from '../../lib/contracts/session-record.interface.js';

const [mode, id, countArg] = process.argv.slice(2);
const options = JSON.parse(process.env.ML_WORKER_OPTIONS ?? '{}') as SessionModuleOptions;
const lockOptions = { waitMs: Number(process.env.ML_WORKER_WAIT_MS ?? 20_000), ttlMs: Number(process.env.ML_WORKER_TTL_MS ?? 10_000) };
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function withCounter(previous: SessionRecord | null, counter: number): SessionRecord {
  const now = Date.now();
  return {
    payload: JSON.stringify({ data: { counter }, flash: {} }),
    meta: previous?.meta ?? { createdAt: now, lastActivity: now, expiresAt: now + 3_600_000, userId: null, ipAddress: null, userAgent: null, csrfToken: null },
    evictAt: now + 600_000,
  };
}

async function main(): Promise<void> {
  const driver = await DriverFactory.create(options);
  await driver.open();
  try {
    if (mode === 'hold') {
      await driver.lock(id, lockOptions);
      process.stdout.write('LOCKED\n');
      await new Promise(() => {}); // hold forever
    }
    for (let i = 0; i < Number(countArg); i++) {
      const token = await driver.lock(id, lockOptions);
      const record = await driver.read(id);
      const counter = record ? (JSON.parse(record.payload) as { data: { counter: number } }).data.counter : 0;
      await sleep(2); // widen the read-modify-write window: without the lock, updates would be lost
      await driver.write(id, withCounter(record, counter + 1), token);
      await driver.unlock(id, token);
    }
    process.stdout.write('DONE\n');
  } finally {
    await driver.close();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`worker failed: ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}\n`);
  process.exit(1);
});
