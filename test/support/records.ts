import { randomBytes } from 'node:crypto';
import type { SessionRecord } from '../../lib/contracts/session-record.interface.js';
import type { SessionDriver } from '../../lib/contracts/session-driver.interface.js';
import { SessionStoreUnavailableException } from '../../lib/contracts/session-exception.js';

/** A fresh well-formed session ID for tests. */
export function newId(): string {
  return 'ml_sess_' + randomBytes(32).toString('base64url');
}

/** A record that lives `ttlMs` from now, with recognisable payload and metadata. */
export function makeRecord(over: { payload?: string; userId?: string | null; ttlMs?: number } = {}): SessionRecord {
  const now = Date.now();
  const ttlMs = over.ttlMs ?? 60_000;
  return {
    payload: over.payload ?? JSON.stringify({ data: { n: 1, name: 'Zoë 🐒' }, flash: {} }),
    meta: {
      createdAt: now,
      lastActivity: now,
      expiresAt: now + 3_600_000,
      userId: over.userId === undefined ? null : over.userId,
      ipAddress: '203.0.113.7',
      userAgent: 'jest-agent/1.0',
      csrfToken: 'tok_' + randomBytes(8).toString('hex'),
    },
    evictAt: now + ttlMs,
  };
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** After an outage: polls until a write + read succeeds on the same driver (503s meanwhile are expected); resolves to how long it took. */
export async function waitForRecovery(driver: SessionDriver, timeoutMs: number): Promise<number> {
  const started = Date.now();
  for (;;) {
    try {
      const id = newId();
      await driver.write(id, makeRecord({ payload: 'after-recovery' }));
      if ((await driver.read(id))?.payload === 'after-recovery') return Date.now() - started;
    } catch (err) {
      if (!(err instanceof SessionStoreUnavailableException)) throw err;
    }
    if (Date.now() - started > timeoutMs) throw new Error(`the driver did not recover within ${timeoutMs} ms`);
    await sleep(50);
  }
}
