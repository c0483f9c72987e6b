/**
 * ASVS 5.1.3 / 5.1.4 (input validation), ASVS 7.4.1 (errors handled without leaking), and the
 * module's promise that request input never crashes the process: 10,000+ random and malformed
 * Cookie headers and CSRF values per platform → zero 5xx, zero unhandled rejections.
 */
import { describe, it, expect, afterAll, beforeAll } from '@jest/globals';
import { Body, Controller, Post, UseGuards } from '@nestjs/common';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes, randomInt } from 'node:crypto';
import { CsrfGuard } from '../../lib/http/csrf.guard.js';
import { Session } from '../../lib/http/session.decorators.js';
import type { SessionInterface } from '../../lib/contracts/session.interface.js';
import { createTestApp, PLATFORMS } from '../support/test-app.js';
import { newId } from '../support/records.js';

@Controller('fuzz')
class FuzzController {
  @Post('change')
  @UseGuards(CsrfGuard)
  change(@Session() s: SessionInterface, @Body() b: unknown) {
    s.set('last', typeof b);
    return { ok: true };
  }
}

const HEADER_SAFE = (): string => {
  // Any byte a client may legally put in a header value: HTAB, SP..~, and obs-text (0x80-0xFF).
  let out = '';
  const n = randomInt(0, 300);
  for (let i = 0; i < n; i++) {
    const r = randomInt(0, 100);
    out += r < 3 ? '\t' : r < 80 ? String.fromCharCode(randomInt(0x20, 0x7f)) : String.fromCharCode(randomInt(0x80, 0x100));
  }
  return out;
};

function fuzzCookie(live: string): string {
  const id = newId();
  switch (randomInt(0, 14)) {
    case 0: return HEADER_SAFE();
    case 1: return `ML_SESS=${HEADER_SAFE()}`;
    case 2: return `ML_SESS=${id.slice(0, randomInt(0, id.length))}`;
    case 3: return `ML_SESS=${id}${HEADER_SAFE().slice(0, 5)}`;
    case 4: return `ML_SESS=${live}; ML_SESS=${id}`;
    case 5: return `ML_SESS="${live}`;
    case 6: return `ML_SESS=${'A'.repeat(randomInt(1, 10000))}`;
    case 7: return Array.from({ length: randomInt(1, 200) }, (_, i) => `c${i}=${randomBytes(4).toString('hex')}`).join('; ');
    case 8: return `=${live}; ;; =; ML_SESS`;
    case 9: return `ML_SESS=../../../etc/passwd`;
    case 10: return `ML_SESS=${live.replace(/[a-z]/, 'é')}`;
    case 11: return `ML_SESS=${encodeURIComponent(live)}%00`;
    case 12: return `ML_SESS=${live}`; // the real one, with fuzzed CSRF values below
    default: return `ML_SESS=${id}`;
  }
}

function fuzzBody(): { body: string; type: string } {
  switch (randomInt(0, 8)) {
    case 0: return { body: JSON.stringify({ _token: randomBytes(randomInt(0, 64)).toString('base64url') }), type: 'application/json' };
    case 1: return { body: JSON.stringify({ _token: [randomInt(0, 9)] }), type: 'application/json' };
    case 2: return { body: JSON.stringify({ _token: { $gt: '' } }), type: 'application/json' };
    case 3: return { body: `_token=${encodeURIComponent(HEADER_SAFE())}&_token=x`, type: 'application/x-www-form-urlencoded' };
    case 4: return { body: '{"_token":', type: 'application/json' };
    case 5: return { body: HEADER_SAFE(), type: 'text/plain' };
    case 6: return { body: JSON.stringify(null), type: 'application/json' };
    default: return { body: '', type: 'application/json' };
  }
}

function send(port: number, agent: http.Agent, headers: Record<string, string>, body: string): Promise<number> {
  return new Promise((resolve) => {
    const req = http.request({ host: '127.0.0.1', port, path: '/fuzz/change', method: 'POST', agent, headers: { ...headers, 'content-length': Buffer.byteLength(body) } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    // A header Node's own client refuses to send is not a server outcome: count it as "client-rejected".
    req.on('error', () => resolve(-1));
    req.end(body);
  });
}

describe.each(PLATFORMS)('fuzzing cookies and CSRF values (%s)', (platform) => {
  const unhandled: unknown[] = [];
  const onUnhandled = (e: unknown): void => void unhandled.push(e);
  beforeAll(() => void process.on('unhandledRejection', onUnhandled));
  afterAll(() => void process.off('unhandledRejection', onUnhandled));

  it('10,000 malformed requests: zero 5xx, zero unhandled rejections, and the app still works', async () => {
    const t = await createTestApp(platform, {}, { controllers: [FuzzController] });
    await t.app.listen(0, '127.0.0.1');
    const port = (t.app.getHttpServer().address() as AddressInfo).port;
    const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
    try {
      const b = t.browser();
      await b.post('/s/set', { a: 1 });
      const live = b.sessionId!;
      const statuses = new Map<number, number>();
      const total = 10_000;
      let sent = 0;
      const worker = async (): Promise<void> => {
        while (sent < total) {
          sent++;
          const { body, type } = fuzzBody();
          const headers: Record<string, string> = { cookie: fuzzCookie(live), 'content-type': type, 'user-agent': 'jest-browser/1.0' };
          if (randomInt(0, 2) === 0) headers['x-csrf-token'] = HEADER_SAFE();
          if (randomInt(0, 4) === 0) headers['sec-fetch-site'] = ['cross-site', 'same-site', 'none', HEADER_SAFE()][randomInt(0, 4)];
          if (randomInt(0, 4) === 0) headers.origin = ['null', 'http://evil.example', HEADER_SAFE()][randomInt(0, 3)];
          const status = await send(port, agent, headers, body);
          statuses.set(status, (statuses.get(status) ?? 0) + 1);
        }
      };
      await Promise.all(Array.from({ length: 16 }, worker));
      const fiveXX = [...statuses].filter(([s]) => s >= 500).reduce((n, [, c]) => n + c, 0);
      const answered = [...statuses].filter(([s]) => s > 0).reduce((n, [, c]) => n + c, 0);
      expect(fiveXX).toBe(0);
      expect(answered).toBeGreaterThanOrEqual(9_000);
      expect(unhandled).toEqual([]);
      // Still serving, and the live session survived the storm.
      expect((await b.get('/s/get')).body.data.a).toBe(1);
    } finally {
      agent.destroy();
      await t.close();
    }
  }, 120_000);
});
