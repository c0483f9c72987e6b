/**
 * Shared by every benchmark server: the route contract, the start-up handshake with the runner
 * and a clean shutdown. A server is started by `bench/run.ts` as its own process
 * (`node dist/bench/servers/<name>.js`) with its settings in the environment, and reports
 * `{ ready: true }` over the IPC channel once it listens.
 *
 * Route shapes (identical for every contender, all GET so no body parsing is involved):
 * - `/login`: creates the session (`n = 0`, `hot = 0`); used once per session before the load.
 * - `/rw`: reads `n` and stores `n + 1` (the "reads and changes one value" route).
 * - `/ro`: reads `n` (this module: `@SessionReadOnly()`; the others have no such mode).
 * - `/peek`: reads `n` on an ordinary route (used for the no-cookie case).
 * - `/hot`: reads `hot`, awaits `HOT_DELAY_MS`, stores `hot + 1` (the hot-session test);
 *   `/hot-stats`: how long that await really took (mean since the last call).
 */
import 'reflect-metadata';
import { performance } from 'node:perf_hooks';
import type { INestApplication } from '@nestjs/common';

/** Sent by the load generator and the session set-up alike (this module fingerprints the User-Agent). */
export const BENCH_USER_AGENT = 'ml-session-bench/1';
/** The await between read and write in `/hot`. */
export const HOT_DELAY_MS = 5;

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** How long the `/hot` handlers' await really took (timers fire late on a busy machine); read and reset by `/hot-stats`. */
const hotAwait = { count: 0, totalMs: 0 };

/** The `/hot` handler's await, timed. */
export async function hotDelay(): Promise<void> {
  const start = performance.now();
  await sleep(HOT_DELAY_MS);
  hotAwait.count++;
  hotAwait.totalMs += performance.now() - start;
}

/** Mean duration of the `/hot` await since the last call, then resets. */
export function takeHotStats(): { count: number; meanMs: number } {
  const out = { count: hotAwait.count, meanMs: hotAwait.count ? hotAwait.totalMs / hotAwait.count : 0 };
  hotAwait.count = 0;
  hotAwait.totalMs = 0;
  return out;
}

/** A required environment variable (the runner sets them all). */
export function env(name: string, fallback?: string): string {
  const value = process.env[name] ?? fallback;
  if (value === undefined) throw new Error(`bench server: environment variable ${name} is not set`);
  return value;
}

/**
 * Experiments only (never set by the runner): extra ioredis options for this module's Redis
 * contenders, as JSON in ML_REDIS_OPTIONS, e.g. '{"enableAutoPipelining":true}'.
 */
export function mlRedisOptions(): { options?: Record<string, unknown> } {
  const raw = process.env.ML_REDIS_OPTIONS;
  return raw ? { options: JSON.parse(raw) as Record<string, unknown> } : {};
}

/** Same secret for every express-session / @fastify/session contender (they sign their cookies). */
export const COOKIE_SECRET = 'bench-secret-bench-secret-bench-secret-0123456789';

/**
 * Listens on 127.0.0.1:`PORT`, tells the runner it is ready, and closes the app (`app.close()`
 * runs the shutdown hooks, so drivers and store clients close) when the runner says `stop`,
 * sends SIGTERM or goes away.
 */
export async function serve(app: INestApplication, onClose: () => Promise<void> = async () => {}): Promise<void> {
  const port = Number(env('PORT'));
  await app.listen(port, '127.0.0.1');
  let closing = false;
  const stop = async (): Promise<void> => {
    if (closing) return;
    closing = true;
    try {
      await app.close();
      await onClose();
    } catch (err) {
      console.error(`bench server on ${port}: error while closing: ${String(err)}`);
    }
    process.exit(0);
  };
  process.on('message', (msg: unknown) => {
    if (msg === 'stop') void stop();
  });
  process.on('SIGTERM', () => void stop());
  process.on('disconnect', () => void stop());
  if (process.send) process.send({ ready: true, pid: process.pid });
  else console.log(`bench server ready on http://127.0.0.1:${port}/`);
}

/** Exits the process with a message when start-up fails, so the runner sees it at once. */
export function start(main: () => Promise<void>): void {
  main().catch((err: unknown) => {
    console.error('bench server failed to start:', err);
    process.exit(1);
  });
}
