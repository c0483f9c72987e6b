/**
 * The sample app, as a real process, driven by Debian's headless Chromium through playwright-core
 * (never a downloaded browser). Sign in, flash exactly once, CSRF-protected form, a cross-site form
 * post from another origin rejected, sign out, and the old cookie is dead.
 */
import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium, type Browser } from 'playwright-core';

const CHROMIUM = '/usr/bin/chromium';
const MAIN = resolve('dist/sample-app/main.js');

function freePort(): Promise<number> {
  return new Promise((ok) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => ok(port));
    });
  });
}

describe('sample app in a real browser (headless Chromium)', () => {
  let app: ChildProcess;
  let evil: Server;
  let browser: Browser;
  let base: string;
  let evilUrl: string;
  let storage: string | undefined;

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install chromium (.ci/run does).`);
    if (!existsSync(MAIN)) throw new Error('run "npm run build" first (npm test does)');
    storage = mkdtempSync(join(tmpdir(), 'ml-sample-'));
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    app = spawn(process.execPath, [MAIN], { env: { ...process.env, PORT: String(port), SESSION_FILE_PATH: storage, SESSION_DRIVER: 'file' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    app.stderr!.on('data', (d: Buffer) => (log += d.toString()));
    await new Promise<void>((ok, fail) => {
      const timer = setTimeout(() => fail(new Error(`sample app did not start: ${log}`)), 20_000);
      app.stdout!.on('data', (d: Buffer) => {
        if (d.toString().includes('Sample app running at')) {
          clearTimeout(timer);
          ok();
        }
      });
      app.on('exit', (code) => fail(new Error(`sample app exited ${code}: ${log}`)));
    });
    // Another origin (localhost vs 127.0.0.1 are different sites) serving an auto-submitting attack form.
    evil = createServer((_req, res) => {
      res.setHeader('content-type', 'text/html');
      res.end(`<form id="f" method="post" action="${base}/profile"><input name="bio" value="pwned"><input name="_token" value="guessed"></form><script>document.getElementById('f').submit()</script>`);
    });
    await new Promise<void>((ok) => evil.listen(0, '127.0.0.1', ok));
    evilUrl = `http://localhost:${(evil.address() as AddressInfo).port}/`;
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    evil?.close();
    app?.kill('SIGTERM');
    if (storage) rmSync(storage, { recursive: true, force: true }); // unset when beforeAll failed early
  });

  it('signs in, shows the flash once, saves a CSRF-protected form, rejects a cross-site post, signs out for good', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();

    await page.goto(base + '/');
    expect(await page.textContent('#visits')).toContain('Visits in this session: 1');
    await page.fill('#name', 'Ada');
    await Promise.all([page.waitForURL(base + '/'), page.click('#login')]);
    expect(await page.textContent('#flash')).toBe('Welcome, Ada!');
    expect(await page.textContent('#who')).toContain('Ada');
    await page.reload();
    expect(await page.$('#flash')).toBeNull(); // exactly once

    await page.goto(base + '/profile');
    await page.fill('#bio', 'Hello from Chromium');
    await Promise.all([page.waitForURL(base + '/profile'), page.click('#save')]);
    expect(await page.textContent('#flash')).toBe('Profile updated!');
    expect(await page.textContent('#bio-shown')).toBe('Hello from Chromium');
    await page.reload();
    expect(await page.$('#flash')).toBeNull();

    await page.goto(base + '/');
    await page.click('#ping');
    await page.waitForSelector('#api:not(:empty)');
    expect(await page.textContent('#api')).toBe('API calls: 1');

    // The attack: a page on another origin posts the profile form.
    const attack = page.waitForResponse((r) => r.url() === base + '/profile' && r.request().method() === 'POST');
    await page.goto(evilUrl);
    expect((await attack).status()).toBe(403);
    await page.goto(base + '/profile');
    expect(await page.textContent('#bio-shown')).toBe('Hello from Chromium');

    const stolen = await context.cookies(base);
    expect(stolen.find((c) => c.name === 'ML_SESS')?.httpOnly).toBe(true);
    await page.goto(base + '/');
    await Promise.all([page.waitForURL(base + '/'), page.click('#logout')]);
    expect(await page.textContent('#flash')).toBe('Signed out.');

    // Replaying the pre-logout cookie in a fresh browser: the session is dead.
    const replay = await browser.newContext();
    await replay.addCookies(stolen);
    const replayPage = await replay.newPage();
    await replayPage.goto(base + '/profile');
    expect(await replayPage.textContent('#who')).toContain('Not signed in');
    await replay.close();
    await context.close();
  }, 60_000);

  it('lists the user’s sessions by short hash and signs out everywhere else', async () => {
    const signIn = async () => {
      const ctx = await browser.newContext();
      const p = await ctx.newPage();
      await p.goto(base + '/');
      await p.fill('#name', 'Grace');
      await Promise.all([p.waitForURL(base + '/'), p.click('#login')]);
      return { ctx, p };
    };
    const laptop = await signIn();
    const phone = await signIn();
    await laptop.p.goto(base + '/sessions');
    const table = await laptop.p.textContent('#sessions');
    expect(table).toContain('(this one)');
    expect(table).not.toMatch(/ml_sess_/);
    expect(await laptop.p.$$('#sessions tr')).toHaveLength(3);
    await Promise.all([laptop.p.waitForURL(base + '/sessions'), laptop.p.click('#others')]);
    expect(await laptop.p.textContent('#flash')).toBe('Signed out 1 other session(s).');
    await phone.p.goto(base + '/profile');
    expect(await phone.p.textContent('#who')).toContain('Not signed in');
    await laptop.p.goto(base + '/profile');
    expect(await laptop.p.textContent('#who')).toContain('Grace');
    await laptop.ctx.close();
    await phone.ctx.close();
  }, 60_000);
});
