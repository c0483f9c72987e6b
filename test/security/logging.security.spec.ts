/** ASVS 7.1.1 / 7.1.2 (no session tokens or sensitive data in logs), OWASP Logging Cheat Sheet. */
import { describe, it, expect } from '@jest/globals';
import type { LoggerService } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { MemoryDriver } from '../../lib/drivers/memory.driver.js';
import { SessionStoreUnavailableException } from '../../lib/contracts/session-exception.js';
import type { SessionRecord } from '../../lib/contracts/session-record.interface.js';
import { createTestApp, PLATFORMS } from '../support/test-app.js';

class CapturingLogger implements LoggerService {
  lines: string[] = [];
  private add = (...args: unknown[]): void => void this.lines.push(args.map((a) => (a instanceof Error ? `${a.message} ${a.stack}` : String(a))).join(' '));
  log = this.add;
  error = this.add;
  warn = this.add;
  debug = this.add;
  verbose = this.add;
}

class BreakableDriver extends MemoryDriver {
  failReads = false;
  failUnlock = false;
  /** What the Redis and database drivers throw when their server does not answer. */
  unavailable = false;
  unavailableWrites = false;
  override async read(id: string): Promise<SessionRecord | null> {
    // Errors from real clients often echo the command and its key: make this one do the same.
    if (this.failReads) throw new Error(`READ failed for key sess:${id}`);
    if (this.unavailable) throw new SessionStoreUnavailableException('The Redis session store did not answer within 2000 ms; retry shortly.');
    return super.read(id);
  }
  override async write(id: string, record: SessionRecord, token?: string): Promise<void> {
    if (this.unavailableWrites) throw new SessionStoreUnavailableException('The session database (postgres) did not answer within 5000 ms (database.statementTimeout); retry shortly.');
    return super.write(id, record, token);
  }
  override async unlock(id: string, token: string): Promise<void> {
    if (this.failUnlock) throw new Error(`UNLOCK ${id} ${token} failed`);
    return super.unlock(id, token);
  }
}

describe.each(PLATFORMS)('logs never carry a raw session ID, token or payload (%s)', (platform) => {
  it('through corrupt data, undecryptable data, store failures and unlock failures', async () => {
    const logger = new CapturingLogger();
    const driver = new BreakableDriver();
    const key = randomBytes(32).toString('base64');
    const t = await createTestApp(platform, { driver, encryption: { keys: [key] } }, { logger });
    const secrets: string[] = [];
    try {
      const b = t.browser();
      await b.post('/s/set', { secret: 'TOP-SECRET-PAYLOAD' });
      secrets.push(b.sessionId!, (await b.get('/s/csrf')).body.token as string, 'TOP-SECRET-PAYLOAD');
      // 1. undecryptable / corrupt payload → warning
      const r = (await driver.read(b.sessionId!))!;
      await driver.write(b.sessionId!, { ...r, payload: r.payload.slice(0, -6) });
      expect((await b.get('/s/get')).status).toBe(200);
      // 2. a store that fails on read → error log + 503
      await b.post('/s/set', { secret: 'TOP-SECRET-PAYLOAD' });
      secrets.push(b.sessionId!);
      driver.failReads = true;
      expect((await b.get('/s/get')).status).toBe(503);
      driver.failReads = false;
      // 3. an unlock that fails → warning (the lock expires by TTL)
      driver.failUnlock = true;
      expect((await b.get('/s/get')).status).toBe(200);
      driver.failUnlock = false;
    } finally {
      await t.close();
    }
    const joined = logger.lines.join('\n');
    expect(logger.lines.filter((l) => /Session|session/.test(l)).length).toBeGreaterThanOrEqual(3);
    expect(joined).not.toMatch(/ml_sess_/);
    for (const s of secrets) expect(joined).not.toContain(s);
    // What is logged instead: a short reference.
    expect(joined).toMatch(/session [0-9a-f]{12}/);
  });

  it('a store that does not answer is logged, once per 10 s rather than once per request, on read and on write', async () => {
    const logger = new CapturingLogger();
    const driver = new BreakableDriver();
    const t = await createTestApp(platform, { driver }, { logger });
    try {
      const b = t.browser();
      await b.post('/s/set', { a: 1 });
      driver.unavailable = true;
      for (let i = 0; i < 5; i++) expect((await b.get('/s/get')).status).toBe(503);
      driver.unavailable = false;
      const reports = logger.lines.filter((l) => /Session store (read|write) failed/.test(l));
      expect(reports).toHaveLength(1); // an outage does not log every request
      expect(reports[0]).toMatch(/did not answer within 2000 ms/);
      expect(reports.join('\n')).not.toContain(b.sessionId!);
    } finally {
      await t.close();
    }
    // A commit that cannot write: the same, from another app (its own interval).
    const writeLogger = new CapturingLogger();
    const writeDriver = new BreakableDriver();
    const t2 = await createTestApp(platform, { driver: writeDriver }, { logger: writeLogger });
    try {
      writeDriver.unavailableWrites = true;
      for (let i = 0; i < 3; i++) expect((await t2.browser().post('/s/set', { a: i })).status).toBe(503);
      const reports = writeLogger.lines.filter((l) => /Session store write failed/.test(l));
      expect(reports).toHaveLength(1);
      expect(reports[0]).toMatch(/statementTimeout/);
    } finally {
      await t2.close();
    }
  });
});
