/**
 * CPU profile of one contender under the benchmark's load, start-up excluded:
 * `npx tsc -p tsconfig.bench.json && node dist/bench/profile.js <server key> [path=/rw] [seconds=10] [filter]`
 * (a path prefixed with `nocookie:` is loaded without session cookies, e.g. `nocookie:/peek`)
 * (server keys as in contenders.ts: b, c, d, g, …). The store must be reachable as for the
 * benchmark; the contender's bench keys/dir/table are used and removed like in run.ts.
 * The profile is written to bench/results/profiles/<key>-<route>.cpuprofile and summarized.
 */
import { fork } from 'node:child_process';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import pg from 'pg';
import type { LoadSummary } from './load.js';
import { summarize } from './profile-summary.js';
import { BENCH_USER_AGENT } from './servers/common.js';
import { SERVERS } from './contenders.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, '..', '..');
const PROFILES = join(ROOT, 'bench', 'results', 'profiles');

async function main(): Promise<void> {
  const [key = 'c', target = '/rw', seconds = '10', filter] = process.argv.slice(2);
  const noCookie = target.startsWith('nocookie:');
  const path = noCookie ? target.slice('nocookie:'.length) : target;
  const spec = SERVERS.find((s) => s.key === key);
  if (!spec) throw new Error(`unknown server key ${key}`);
  const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
  const databaseUrl = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
  const dir = join(tmpdir(), `ml-session-profile-${process.pid}`);
  const name = `${key}-${noCookie ? 'nocookie-' : ''}${path.replace(/\W/g, '') || 'root'}`;
  await mkdir(PROFILES, { recursive: true });
  const db = new pg.Client({ connectionString: databaseUrl });
  await db.connect();
  if (spec.store === 'postgres') {
    await db.query(`DROP TABLE IF EXISTS ${spec.location}`);
    if (spec.ours) await db.query((await readFile(join(ROOT, 'migrations', 'postgres.sql'), 'utf8')).replace(/\bsessions/g, spec.location!));
  }
  const port = Number(process.env.BENCH_PORT ?? 4151);
  const env: NodeJS.ProcessEnv = { ...process.env, PORT: String(port), REDIS_URL: redisUrl, KEY_PREFIX: `bench:prof:${key}:`, SESSION_DIR: join(dir, key), DATABASE_URL: databaseUrl, SESSION_TABLE: spec.location ?? '' };
  const spawnedAt = Date.now();
  const server = fork(join(HERE, 'servers', `${spec.file}.js`), [], { env, execArgv: ['--cpu-prof', `--cpu-prof-dir=${PROFILES}`, `--cpu-prof-name=${name}.cpuprofile`], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  await new Promise<void>((r) => server.once('message', () => r()));
  const url = `http://127.0.0.1:${port}`;
  const cookies: string[] = [];
  if (spec.store !== 'none') {
    for (let i = 0; i < 50; i++) {
      const res = await fetch(`${url}/login`, { headers: { 'user-agent': BENCH_USER_AGENT } });
      cookies.push(res.headers.getSetCookie()[0]!.split(';')[0]);
    }
  }
  const load = fork(join(HERE, 'load.js'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  await new Promise<void>((r) => load.once('message', () => r()));
  const run = (duration: number): Promise<LoadSummary> =>
    new Promise((r) => {
      load.once('message', (m: unknown) => r((m as { summary: LoadSummary }).summary));
      load.send({ id: 1, url, path, connections: 50, duration, cookies: noCookie ? [] : cookies, userAgent: BENCH_USER_AGENT });
    });
  await run(3); // warm-up, not in the window
  const from = Date.now() - spawnedAt;
  const result = await run(Number(seconds));
  const to = Date.now() - spawnedAt;
  load.disconnect();
  server.send('stop');
  await new Promise<void>((r) => server.once('exit', () => r()));
  console.log(`${key} ${path}: ${result.rps.toFixed(0)} req/s, p99 ${result.p99} ms, ${result.non2xx + result.errors} failures`);
  // The window drops 0.3 s at each end; the request count is scaled to match.
  const windowRequests = Math.round((result.total * (to - from - 600)) / (to - from));
  console.log(summarize(join(PROFILES, `${name}.cpuprofile`), 40, filter, { fromMs: from + 300, toMs: to - 300 }, windowRequests));
  const redis = new Redis(redisUrl);
  const keys = await redis.keys(`bench:prof:${key}:*`);
  if (keys.length) await redis.del(...keys);
  redis.disconnect();
  if (spec.store === 'postgres') await db.query(`DROP TABLE IF EXISTS ${spec.location}`);
  await db.end();
  await rm(dir, { recursive: true, force: true });
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
