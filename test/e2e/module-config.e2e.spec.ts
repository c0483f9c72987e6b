import { describe, it, expect } from '@jest/globals';
import { Injectable, Module } from '@nestjs/common';
import { ConfigModule, ConfigService, registerAs } from '@nestjs/config';
import { SessionModule } from '../../lib/session.module.js';
import { SESSION_RESOLVED_OPTIONS } from '../../lib/core/session.constants.js';
import type { ResolvedSessionOptions } from '../../lib/core/session-options.resolver.js';
import type { SessionModuleOptions, SessionOptionsFactory } from '../../lib/contracts/session-options.interface.js';
import { SessionDriver } from '../../lib/contracts/session-driver.interface.js';
import { MemoryDriver } from '../../lib/drivers/memory.driver.js';
import { createTestApp, PLATFORMS } from '../support/test-app.js';

const sessionConfig = registerAs('session', (): SessionModuleOptions => ({
  driver: 'memory',
  cookie: { name: process.env.TEST_SESSION_COOKIE ?? 'cfg_sid' },
  idleTimeout: 600,
}));

@Injectable()
class OptionsFactory implements SessionOptionsFactory {
  createSessionOptions(): SessionModuleOptions {
    return { driver: 'memory', cookie: { name: 'class_sid' } };
  }
}

@Module({ providers: [OptionsFactory], exports: [OptionsFactory] })
class OptionsModule {}

describe.each(PLATFORMS)('SessionModule configuration (%s)', (platform) => {
  it('forRootAsync with ConfigModule + registerAs(session)', async () => {
    const t = await createTestApp(platform, {}, {
      sessionModule: SessionModule.forRootAsync({
        imports: [ConfigModule.forRoot({ ignoreEnvFile: true, load: [sessionConfig] })],
        inject: [ConfigService],
        useFactory: (config: ConfigService) => config.getOrThrow<SessionModuleOptions>('session'),
      }),
    });
    try {
      const resolved = t.app.get<ResolvedSessionOptions>(SESSION_RESOLVED_OPTIONS);
      expect(resolved.idleTimeoutMs).toBe(600_000);
      const res = await t.browser().post('/s/set', { a: 1 });
      expect(String(res.headers['set-cookie'])).toMatch(/^cfg_sid=ml_sess_/);
    } finally {
      await t.close();
    }
  });

  it('csrf.global is honoured from forRootAsync options too (on: a POST without token is refused; off: accepted)', async () => {
    for (const global of [true, false]) {
      const t = await createTestApp(platform, {}, {
        sessionModule: SessionModule.forRootAsync({ useFactory: async (): Promise<SessionModuleOptions> => ({ driver: 'memory', csrf: { global } }) }),
      });
      try {
        expect((await t.browser().post('/s/set', { a: 1 })).status).toBe(global ? 403 : 201);
      } finally {
        await t.close();
      }
    }
  });

  it('forRootAsync with useClass and with useExisting', async () => {
    for (const sessionModule of [
      SessionModule.forRootAsync({ useClass: OptionsFactory }),
      SessionModule.forRootAsync({ imports: [OptionsModule], useExisting: OptionsFactory }),
    ]) {
      const t = await createTestApp(platform, {}, { sessionModule });
      try {
        const res = await t.browser().post('/s/set', { a: 1 });
        expect(String(res.headers['set-cookie'])).toMatch(/^class_sid=ml_sess_/);
      } finally {
        await t.close();
      }
    }
  });

  it('accepts a driver instance and a driver class', async () => {
    const instance = new MemoryDriver();
    const t1 = await createTestApp(platform, { driver: instance });
    try {
      expect(t1.app.get(SessionDriver)).toBe(instance);
    } finally {
      await t1.close();
    }
    const t2 = await createTestApp(platform, { driver: MemoryDriver });
    try {
      expect(t2.app.get(SessionDriver)).toBeInstanceOf(MemoryDriver);
      expect((await t2.browser().post('/s/set', { a: 1 })).status).toBe(201);
    } finally {
      await t2.close();
    }
  });

  it.each([
    [{ idleTimeout: -5 }, /"idleTimeout": expected a positive number of seconds/],
    [{ driver: 'mongo' }, /"driver": "mongo" is not a driver/],
    [{ cookie: { sameSite: 'none' } }, /"cookie.sameSite": 'none' requires cookie.secure: true/],
    [{ cookie: { name: '__Host-sid', secure: true, domain: 'example.com' } }, /"cookie.domain": a __Host- cookie must not set a domain/],
    [{ fingerprint: { ip: 'loose' } }, /"fingerprint.ip": expected 'strict' or 'relaxed'/],
    [{ lock: { waitTimeot: 5 } }, /"lock.waitTimeot": unknown option/],
    [{ idleTimout: 5 }, /"idleTimout": unknown option/],
    [{ trustProxy: 1.5 }, /"trustProxy": expected true, false or the number of proxies/],
    [{ trustProxy: 'yes' }, /"trustProxy": expected true, false or the number of proxies/],
    [{ driver: 'database', database: { url: 'postgres://u@h/db', statementTimeout: 0 } }, /database.statementTimeout/],
  ])('a bad option fails start-up with a message that names it: %j', async (options, message) => {
    await expect(createTestApp(platform, options as SessionModuleOptions)).rejects.toThrow(message);
  });
});
