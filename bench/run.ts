/**
 * The benchmark harness: `npm run bench` (= build, then `node dist/bench/run.js`).
 *
 * One run, every contender: each server is its own process (dist/bench/servers/*.js), the load
 * generator (autocannon) is another process (dist/bench/load.js), all on loopback. Steps:
 *   1. clean the bench keys/tables/dirs, start every server, create 50 sessions per server;
 *   2. warm up every case once, then R rounds with the cases interleaved (a b c … , a b c …);
 *   3. hot session (50 clients, one session, read → 5 ms → write);
 *   4. bytes stored per session; Redis round trips per request through a counting proxy;
 *   5. report (median and min–max over the rounds, the targets, and the reference ratios of
 *      (a′)/(a″), the ceiling with pass-through hooks) to stdout, bench/results/latest.{md,json}.
 *
 * Options (environment): BENCH_WARMUP (s, 5), BENCH_DURATION (s, 8), BENCH_ROUNDS (3),
 * BENCH_NOCOOKIE_DURATION (s, 3), BENCH_CONNECTIONS (50), BENCH_SESSIONS (50),
 * BENCH_HOT_REQUESTS (300), REDIS_URL, DATABASE_URL.
 * Flags: --only=a,b,c (servers), --skip=nocookie,hot,bytes,roundtrips, --quick (short runs, 1 round),
 * --profile=c,b (those servers run with --cpu-prof; profiles in bench/results/profiles/),
 * --experiments (adds variants of this module's servers with changed settings, see contenders.ts),
 * --baseline (A/B against another build of this module: `npm run bench:baseline -- <git revision>`
 * first builds that revision into bench/results/baseline/; each selected Redis or File contender
 * of ours then runs beside its twin from there, `<key>@base`, and the rounds alternate their order
 * (a b …, … b a) so that neither build always goes first).
 */
import { execFileSync, fork, type ChildProcess } from 'node:child_process';
import { cp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, release, tmpdir, totalmem, type as osType } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Redis } from 'ioredis';
import pg from 'pg';
import type { LoadJob, LoadSummary } from './load.js';
import { cpuWindow, pidsNamed, type CpuUse } from './cpu.js';
import { CountingRedisProxy, type ProxyCounts } from '../test/support/redis-counting-proxy.js';
import { BENCH_USER_AGENT, HOT_DELAY_MS } from './servers/common.js';
import { HOT_ROUND_TRIP_SERVERS, HOT_SERVERS, NO_COOKIE_CASES, REFERENCE_RATIOS, ROUND_TRIP_SERVERS, SERVERS, SESSION_CASES, TARGETS, type LoadCase, type ServerSpec } from './contenders.js';

const HERE = dirname(fileURLToPath(import.meta.url)); // dist/bench
const ROOT = resolve(HERE, '..', '..');
const RESULTS_DIR = join(ROOT, 'bench', 'results');
/**
 * The servers and the load generator run from a copy of dist/lib and dist/bench taken at the
 * start, so a rebuild of dist/ during the run (someone else's `npm test`) cannot mix two versions
 * of the library in one report. It sits under the repository, so `node_modules` resolves as usual.
 */
const SNAPSHOT = join(RESULTS_DIR, 'dist-snapshot');
const SNAP_BENCH = join(SNAPSHOT, 'bench');

// ---------------------------------------------------------------- settings

const args = process.argv.slice(2);
const flag = (name: string): string | undefined => args.find((a) => a === `--${name}` || a.startsWith(`--${name}=`))?.split('=')[1] ?? (args.includes(`--${name}`) ? '' : undefined);
const quick = flag('quick') !== undefined;
const num = (name: string, fallback: number): number => {
  const v = process.env[name];
  if (v === undefined || v === '') return fallback;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number`);
  return n;
};

const settings = {
  warmup: num('BENCH_WARMUP', quick ? 1 : 5),
  duration: num('BENCH_DURATION', quick ? 2 : 8),
  rounds: num('BENCH_ROUNDS', quick ? 1 : 3),
  noCookieDuration: num('BENCH_NOCOOKIE_DURATION', quick ? 1 : 3),
  connections: num('BENCH_CONNECTIONS', 50),
  sessions: num('BENCH_SESSIONS', 50),
  hotRequests: num('BENCH_HOT_REQUESTS', quick ? 100 : 300),
  redisUrl: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
  databaseUrl: process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
  only: flag('only')?.split(',').filter(Boolean) ?? null,
  skip: new Set(flag('skip')?.split(',').filter(Boolean) ?? []),
  profile: new Set(flag('profile')?.split(',').filter(Boolean) ?? []),
  experiments: flag('experiments') !== undefined,
  baseline: flag('baseline') !== undefined,
};

/** Where `npm run bench:baseline -- <rev>` puts the other build (dist/lib and dist/bench of that revision). */
const BASELINE_DIR = join(RESULTS_DIR, 'baseline');

const BASE_PORT = Number(process.env.BENCH_PORT ?? 4101);
const RT_BASE_PORT = BASE_PORT + 100;
const PROXY_PORT = BASE_PORT + 198;
const BENCH_DIR = join(tmpdir(), `ml-session-bench-${process.pid}`);
const PAUSE_MS = 300;

const t0 = Date.now();
const log = (msg: string): void => console.log(`[${((Date.now() - t0) / 1000).toFixed(0).padStart(4)} s] ${msg}`);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------- processes

interface RunningServer {
  spec: ServerSpec;
  url: string;
  proc: ChildProcess;
  stderr: string[];
  cookies: string[];
}

function serverEnv(spec: ServerSpec, port: number, redisUrl: string, location = spec.location): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...spec.env, PORT: String(port) };
  if (spec.store === 'redis') Object.assign(env, { REDIS_URL: redisUrl, KEY_PREFIX: location });
  if (spec.store === 'file') env.SESSION_DIR = join(BENCH_DIR, location!);
  if (spec.store === 'postgres') Object.assign(env, { DATABASE_URL: settings.databaseUrl, SESSION_TABLE: location });
  return env;
}

async function startServer(spec: ServerSpec, port: number, env: NodeJS.ProcessEnv, profileName?: string): Promise<RunningServer> {
  const execArgv = profileName ? ['--cpu-prof', `--cpu-prof-dir=${join(RESULTS_DIR, 'profiles')}`, `--cpu-prof-name=${profileName}.cpuprofile`] : [];
  const proc = fork(join(spec.dir ?? join(SNAP_BENCH, 'servers'), `${spec.file}.js`), [], { env, execArgv, stdio: ['ignore', 'inherit', 'pipe', 'ipc'] });
  const stderr: string[] = [];
  proc.stderr?.on('data', (d: Buffer) => {
    const text = d.toString();
    stderr.push(text);
    if (stderr.length > 50) stderr.shift();
    process.stderr.write(`[server ${spec.key}] ${text}`);
  });
  await new Promise<void>((resolveReady, reject) => {
    const timer = setTimeout(() => reject(new Error(`server ${spec.key} did not start within 30 s`)), 30_000);
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server ${spec.key} exited with ${code} during start-up: ${stderr.join('')}`));
    });
    proc.on('message', (m: unknown) => {
      if ((m as { ready?: boolean }).ready) {
        clearTimeout(timer);
        resolveReady();
      }
    });
  });
  proc.removeAllListeners('exit');
  return { spec, url: `http://127.0.0.1:${port}`, proc, stderr, cookies: [] };
}

async function stopServer(server: RunningServer): Promise<void> {
  if (server.proc.exitCode !== null) return;
  const exited = new Promise<void>((r) => server.proc.once('exit', () => r()));
  server.proc.send('stop');
  const timeout = sleep(10_000).then(() => 'timeout');
  if ((await Promise.race([exited.then(() => 'ok'), timeout])) === 'timeout') {
    server.proc.kill('SIGKILL');
    await exited;
  }
}

/** The autocannon process, kept for the whole run. */
class LoadGenerator {
  private proc: ChildProcess | null = null;
  private nextId = 1;

  get pid(): number {
    return this.proc?.pid ?? 0;
  }
  private readonly pending = new Map<number, { resolve: (s: LoadSummary) => void; reject: (e: Error) => void }>();

  async start(): Promise<void> {
    const proc = fork(join(SNAP_BENCH, 'load.js'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.proc = proc;
    await new Promise<void>((r) => proc.once('message', () => r()));
    proc.on('message', (m: unknown) => {
      const msg = m as { ok: boolean; summary?: LoadSummary; id?: number; error?: string };
      const id = msg.ok ? msg.summary!.id : msg.id!;
      const p = this.pending.get(id);
      if (!p) return;
      this.pending.delete(id);
      if (msg.ok) p.resolve(msg.summary!);
      else p.reject(new Error(msg.error));
    });
  }

  run(job: Omit<LoadJob, 'id'>): Promise<LoadSummary> {
    const id = this.nextId++;
    return new Promise((resolveJob, reject) => {
      this.pending.set(id, { resolve: resolveJob, reject });
      this.proc!.send({ ...job, id });
    });
  }

  stop(): void {
    this.proc?.disconnect();
  }
}

// ---------------------------------------------------------------- HTTP helpers

async function get(url: string, cookie?: string): Promise<{ status: number; body: string; setCookie: string[] }> {
  const headers: Record<string, string> = { 'user-agent': BENCH_USER_AGENT };
  if (cookie) headers.cookie = cookie;
  const res = await fetch(url, { headers });
  return { status: res.status, body: await res.text(), setCookie: res.headers.getSetCookie() };
}

/** One `/login` per session; the session cookie (`name=value`) of each. */
async function createSessions(server: RunningServer, count: number): Promise<string[]> {
  const cookies: string[] = [];
  for (let i = 0; i < count; i++) {
    const res = await get(`${server.url}/login`);
    const cookie = res.setCookie[0]?.split(';')[0];
    if (res.status !== 200 || !cookie) throw new Error(`server ${server.spec.key}: /login gave ${res.status} and no cookie`);
    cookies.push(cookie);
  }
  // Each session must load and change: a failing store would otherwise hide behind fresh sessions.
  const check = await get(`${server.url}/rw`, cookies[0]);
  if (check.status !== 200 || JSON.parse(check.body).n !== 1) throw new Error(`server ${server.spec.key}: session did not persist (${check.status} ${check.body})`);
  await get(`${server.url}/rw`, cookies[0]); // leave n in a steady state
  return cookies;
}

// ---------------------------------------------------------------- stores: preparation, cleanup, inspection

async function cleanRedis(redis: Redis): Promise<number> {
  let removed = 0;
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', 'bench:*', 'COUNT', 1000);
    cursor = next;
    if (keys.length) removed += await redis.unlink(...keys);
  } while (cursor !== '0');
  return removed;
}

const PG_TABLES = ['bench_ml_sessions', 'bench_cps_sessions'];

async function preparePostgres(db: pg.Client, ourTables: string[]): Promise<void> {
  for (const t of PG_TABLES) await db.query(`DROP TABLE IF EXISTS ${t}`);
  const ddl = await readFile(join(ROOT, 'migrations', 'postgres.sql'), 'utf8');
  for (const t of ourTables) await db.query(ddl.replace(/\bsessions/g, t));
}

interface StoredBytes {
  contender: string;
  key: string;
  keyBytes: number;
  valueBytes: number;
  fields: Record<string, number>;
  memoryUsage: number | null;
  /** Redis' internal encoding (a hash with a value over hash-max-listpack-value bytes is a full hashtable). */
  encoding: string;
  sample: Record<string, string>;
}

/** Bytes of one session record (the first found under `prefix`), as stored by Redis. */
async function storedBytes(redis: Redis, contender: string, prefix: string): Promise<StoredBytes | null> {
  const [, keys] = await redis.scan('0', 'MATCH', `${prefix}*`, 'COUNT', 1000);
  const key = keys.find((k) => !k.endsWith(':lock'));
  if (!key) return null;
  const type = await redis.type(key);
  const fields: Record<string, number> = {};
  const sample: Record<string, string> = {};
  let valueBytes = 0;
  if (type === 'hash') {
    const all = await redis.hgetall(key);
    for (const [f, v] of Object.entries(all)) {
      fields[f] = Buffer.byteLength(f) + Buffer.byteLength(v);
      valueBytes += fields[f];
      sample[f] = v;
    }
  } else {
    const v = (await redis.get(key)) ?? '';
    valueBytes = Buffer.byteLength(v);
    fields.value = valueBytes;
    sample.value = v;
  }
  const memoryUsage = Number(await redis.call('MEMORY', 'USAGE', key)) || null;
  const encoding = String(await redis.call('OBJECT', 'ENCODING', key));
  return { contender, key: key.replace(/(ml_sess_|:)[A-Za-z0-9_-]{20,}/, '$1…'), keyBytes: Buffer.byteLength(key), valueBytes, fields, memoryUsage, encoding, sample };
}

/** Runs `work` while timing Redis PINGs from this process (every 2 ms): the round trip under that load. */
async function rttDuring<T>(redis: Redis, work: Promise<T>): Promise<{ result: T; rttMicros: number }> {
  let done = false;
  const samples: number[] = [];
  const loop = (async () => {
    while (!done) {
      const t = process.hrtime.bigint();
      await redis.ping();
      samples.push(Number(process.hrtime.bigint() - t) / 1000);
      await sleep(2);
    }
  })();
  try {
    return { result: await work, rttMicros: samples.length ? median(samples) : 0 };
  } finally {
    done = true;
    await loop;
  }
}

async function redisRoundTripMicros(redis: Redis, n = 2000): Promise<number> {
  for (let i = 0; i < 200; i++) await redis.ping();
  const start = process.hrtime.bigint();
  for (let i = 0; i < n; i++) await redis.ping();
  return Number(process.hrtime.bigint() - start) / 1000 / n;
}

/** The commit measured, and whether lib/ had uncommitted changes. */
function gitDescribe(): string {
  try {
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT }).toString().trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'lib'], { cwd: ROOT }).toString().trim() !== '';
    return `${head}${dirty ? ' + uncommitted lib/ changes' : ''}`;
  } catch {
    return 'unknown';
  }
}

// ---------------------------------------------------------------- statistics and formatting

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const fmt = (x: number, digits = 0): string => x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
const ratio = (x: number | undefined, y: number | undefined): string => (x && y ? `${(x / y).toFixed(2)}×` : '–');

/** One measured run: autocannon's summary plus the CPU used meanwhile. */
type Measured = LoadSummary & { cpu: CpuUse };

interface CaseResult {
  case: LoadCase;
  rounds: Measured[];
  rpsMedian: number;
  rpsMin: number;
  rpsMax: number;
  p99Median: number;
  p99Min: number;
  p99Max: number;
  failures: number;
  /** Medians over the rounds: CPU µs per request of the server process and of the store, and the share of the machine used by anything else. */
  serverCpuUs: number;
  storeCpuUs: number;
  loadCpuUs: number;
  /** Median over the rounds of the load generator's wake-ups per request. */
  loadWakeups: number;
  otherShare: number;
}

function summarize(c: LoadCase, rounds: Measured[]): CaseResult {
  const rps = rounds.map((r) => r.rps);
  const p99 = rounds.map((r) => r.p99);
  return {
    case: c,
    rounds,
    rpsMedian: median(rps),
    rpsMin: Math.min(...rps),
    rpsMax: Math.max(...rps),
    p99Median: median(p99),
    p99Min: Math.min(...p99),
    p99Max: Math.max(...p99),
    failures: rounds.reduce((s, r) => s + r.non2xx + r.errors + r.timeouts, 0),
    serverCpuUs: median(rounds.map((r) => (1000 * r.cpu.serverMs) / Math.max(1, r.total))),
    storeCpuUs: median(rounds.map((r) => (1000 * r.cpu.storeMs) / Math.max(1, r.total))),
    loadCpuUs: median(rounds.map((r) => (1000 * r.cpu.loadMs) / Math.max(1, r.total))),
    loadWakeups: median(rounds.map((r) => r.cpu.loadWakeups / Math.max(1, r.total))),
    otherShare: median(rounds.map((r) => r.cpu.otherMs / Math.max(1, r.cpu.capacityMs))),
  };
}

function loadTable(results: CaseResult[], byId: Map<string, CaseResult>, withRatios: boolean): string[] {
  const lines = [
    `| case | req/s median | req/s min–max | p99 ms median (min–max) |${withRatios ? ' × (b) | × (a) |' : ' × (a, no cookie) |'} server CPU µs/req | store CPU µs/req | load gen. CPU µs/req | load gen. wake-ups/req | other load | non-2xx/errors |`,
    `|---|---:|---:|---:|${withRatios ? '---:|---:|' : '---:|'}---:|---:|---:|---:|---:|---:|`,
  ];
  const a = withRatios ? byId.get('a')?.rpsMedian : byId.get('a-nocookie')?.rpsMedian;
  const b = byId.get('b')?.rpsMedian;
  for (const r of results) {
    const ratios = withRatios ? `${ratio(r.rpsMedian, b)} | ${ratio(r.rpsMedian, a)} |` : `${ratio(r.rpsMedian, a)} |`;
    lines.push(
      `| ${r.case.label} | ${fmt(r.rpsMedian)} | ${fmt(r.rpsMin)}–${fmt(r.rpsMax)} | ${fmt(r.p99Median)} (${fmt(r.p99Min)}–${fmt(r.p99Max)}) | ${ratios} ${fmt(r.serverCpuUs)} | ${SERVERS.find((x) => x.key === r.case.server)?.store === 'none' || (r.case.id.endsWith('nocookie') && r.storeCpuUs < 1) ? '–' : fmt(r.storeCpuUs)} | ${fmt(r.loadCpuUs)} | ${r.loadWakeups.toFixed(2)} | ${(100 * r.otherShare).toFixed(0)}% | ${r.failures} |`,
    );
  }
  return lines;
}

// ---------------------------------------------------------------- A/B against a baseline build

async function readBaseline(): Promise<string> {
  try {
    return (await readFile(join(BASELINE_DIR, 'REVISION'), 'utf8')).trim();
  } catch {
    throw new Error('--baseline: no baseline build in bench/results/baseline; run `npm run bench:baseline -- <git revision>` first.');
  }
}

/**
 * Adds `<key>@base` beside each selected Redis or File contender of ours (its own key prefix or
 * directory), and its cases right after the originals. PostgreSQL contenders get no twin: their
 * table is prepared per key.
 */
function addBaselineTwins(selected: ServerSpec[], cases: LoadCase[]): { sessionCases: LoadCase[] } {
  const twins = new Map<string, ServerSpec>();
  for (const spec of [...selected]) {
    if (!spec.ours || (spec.store !== 'redis' && spec.store !== 'file')) continue;
    const twin: ServerSpec = { ...spec, key: `${spec.key}@base`, label: `${spec.label} (baseline)`, location: spec.store === 'redis' ? `${spec.location}base:` : `${spec.location}-base`, dir: join(BASELINE_DIR, 'bench', 'servers') };
    twins.set(spec.key, twin);
    selected.splice(selected.indexOf(spec) + 1, 0, twin);
  }
  const sessionCases = cases.flatMap((c) => {
    const twin = twins.get(c.server);
    return twin ? [c, { ...c, id: `${c.id}@base`, server: twin.key, label: `${c.label} (baseline)` }] : [c];
  });
  return { sessionCases };
}

/** This build against the baseline, case by case: ratios of medians and per round (the rounds pair them). */
function baselineTable(results: CaseResult[], byId: Map<string, CaseResult>, revision: string): string[] {
  const lines = [
    `### This build against the baseline (${revision})`,
    '',
    '| case | req/s this / baseline | ratio of medians | per round: median (min–max) | server CPU µs/req this / baseline |',
    '|---|---:|---:|---:|---:|',
  ];
  for (const x of results) {
    const y = byId.get(`${x.case.id}@base`);
    if (!y) continue;
    const perRound = x.rounds.map((r, i) => r.rps / y.rounds[i].rps);
    lines.push(
      `| ${x.case.label} | ${fmt(x.rpsMedian)} / ${fmt(y.rpsMedian)} | ${ratio(x.rpsMedian, y.rpsMedian)} | ${median(perRound).toFixed(2)}× (${Math.min(...perRound).toFixed(2)}–${Math.max(...perRound).toFixed(2)}×) | ${fmt(x.serverCpuUs)} / ${fmt(y.serverCpuUs)} |`,
    );
  }
  return lines;
}

// ---------------------------------------------------------------- the run

interface HotResult {
  server: string;
  label: string;
  requests: number;
  ok: number;
  failed: number;
  seconds: number;
  throughput: number;
  finalCounter: number;
  lostUpdates: number;
  p99: number;
  /** Mean real duration of the handler's 5 ms await, and the median Redis round trip measured meanwhile. */
  awaitMs: number;
  rttMicros: number;
  /** 1 / (await + 2 round trips): what a perfectly serialized session could do. */
  ideal: number;
}

interface RoundTripRow {
  server: string;
  label: string;
  request: string;
  perRequest: number;
  bytesUpPerRequest: number;
  bytesDownPerRequest: number;
  byName: Record<string, number>;
}

async function main(): Promise<void> {
  const selected = SERVERS.filter((s) => (!settings.only || settings.only.includes(s.key)) && (settings.experiments || !s.experiment));
  let sessionCases = SESSION_CASES.filter((c) => selected.some((s) => s.key === c.server));
  const baselineRevision = settings.baseline ? await readBaseline() : null;
  if (settings.baseline) ({ sessionCases } = addBaselineTwins(selected, sessionCases));
  const selectedKeys = new Set(selected.map((s) => s.key));
  const noCookieCases = settings.skip.has('nocookie') ? [] : NO_COOKIE_CASES.filter((c) => selectedKeys.has(c.server));
  const redis = new Redis(settings.redisUrl, { lazyConnect: true });
  await redis.connect();
  const redisPid = Number(/process_id:(\d+)/.exec(await redis.info('server'))?.[1] ?? 0);
  const storePids = (spec: ServerSpec): (() => number[]) =>
    spec.store === 'redis' ? () => [redisPid] : spec.store === 'postgres' ? () => pidsNamed('postgres') : () => [];
  const db = new pg.Client({ connectionString: settings.databaseUrl });
  await db.connect();

  const machine = {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? 'unknown',
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    os: `${osType()} ${release()}`,
    node: process.version,
    redis: /redis_version:(\S+)/.exec(await redis.info('server'))?.[1] ?? 'unknown',
    postgres: ((await db.query('SHOW server_version')).rows[0] as { server_version: string }).server_version,
    date: new Date().toISOString(),
    loadAverageAtStart: loadavg().map((x) => Number(x.toFixed(2))),
    commit: gitDescribe(),
  };
  if (machine.loadAverageAtStart[0] > 1) {
    log(`WARNING: load average ${machine.loadAverageAtStart.join(' ')} before the run: something else is using the CPU, results will be noisy (see the "other load" column)`);
  }
  log(`machine: ${JSON.stringify(machine)}`);
  log(`settings: warm-up ${settings.warmup} s, ${settings.rounds} rounds × ${settings.duration} s (no cookie: ${settings.noCookieDuration} s), ${settings.connections} connections, ${settings.sessions} sessions`);

  await rm(SNAPSHOT, { recursive: true, force: true });
  await cp(join(ROOT, 'dist', 'lib'), join(SNAPSHOT, 'lib'), { recursive: true });
  await cp(join(ROOT, 'dist', 'bench'), SNAP_BENCH, { recursive: true });
  log(`measuring ${machine.commit} (dist/ copied to bench/results/dist-snapshot)`);
  log(`cleanup: ${await cleanRedis(redis)} stale bench keys removed`);
  // Tables are touched only when a PostgreSQL contender runs (a Redis-only run leaves them alone).
  const usesPostgres = SERVERS.some((s) => s.store === 'postgres' && (settings.only === null || settings.only.includes(s.key)));
  if (usesPostgres) await preparePostgres(db, ['bench_ml_sessions']);
  await rm(BENCH_DIR, { recursive: true, force: true });
  await mkdir(BENCH_DIR, { recursive: true });
  if (settings.profile.size) await mkdir(join(RESULTS_DIR, 'profiles'), { recursive: true });

  const servers = new Map<string, RunningServer>();
  const load = new LoadGenerator();
  const rtServers: RunningServer[] = [];
  let proxy: CountingRedisProxy | null = null;
  try {
    let port = BASE_PORT;
    for (const spec of selected) {
      const s = await startServer(spec, port, serverEnv(spec, port, settings.redisUrl), settings.profile.has(spec.key) ? spec.key : undefined);
      port++;
      servers.set(spec.key, s);
      if (spec.store !== 'none') s.cookies = await createSessions(s, settings.sessions);
      log(`server ${spec.key} (${spec.file}) ready at ${s.url}${s.cookies.length ? `, ${s.cookies.length} sessions` : ''}`);
    }
    await load.start();

    const job = (c: LoadCase, duration: number): Omit<LoadJob, 'id'> => {
      const s = servers.get(c.server)!;
      return { url: s.url, path: c.path, connections: settings.connections, duration, cookies: c.withSessions ? s.cookies : [], userAgent: BENCH_USER_AGENT };
    };
    const measured = async (c: LoadCase, duration: number): Promise<Measured> => {
      const s = servers.get(c.server)!;
      const end = cpuWindow(s.proc.pid!, load.pid, storePids(s.spec));
      const r = await load.run(job(c, duration));
      return { ...r, cpu: end() };
    };

    // Warm-up: every case once, same order as the rounds.
    for (const c of sessionCases) {
      const w = await load.run(job(c, settings.warmup));
      log(`warm-up ${c.id}: ${fmt(w.rps)} req/s${w.non2xx + w.errors ? `, ${w.non2xx} non-2xx, ${w.errors} errors` : ''}`);
      await sleep(PAUSE_MS);
    }
    for (const c of noCookieCases) {
      await load.run(job(c, Math.min(2, settings.warmup)));
      await sleep(PAUSE_MS);
    }

    // Rounds: a b c … , a b c … so machine drift hits every contender alike.
    const raw = new Map<string, Measured[]>();
    for (let round = 1; round <= settings.rounds; round++) {
      const order = [...sessionCases, ...noCookieCases];
      if (settings.baseline && round % 2 === 0) order.reverse();
      for (const c of order) {
        const r = await measured(c, sessionCases.includes(c) ? settings.duration : settings.noCookieDuration);
        raw.set(c.id, [...(raw.get(c.id) ?? []), r]);
        const perReq = (ms: number): string => fmt((1000 * ms) / Math.max(1, r.total));
        log(
          `round ${round} ${c.id}: ${fmt(r.rps)} req/s, p99 ${r.p99} ms, CPU/req server ${perReq(r.cpu.serverMs)} µs, store ${perReq(r.cpu.storeMs)} µs, load gen. wake-ups/req ${(r.cpu.loadWakeups / Math.max(1, r.total)).toFixed(2)}, other load ${((100 * r.cpu.otherMs) / r.cpu.capacityMs).toFixed(0)}%` +
            `${r.non2xx + r.errors ? `, ${r.non2xx} non-2xx, ${r.errors} errors` : ''}`,
        );
        await sleep(PAUSE_MS);
      }
    }
    const results = [...sessionCases, ...noCookieCases].map((c) => summarize(c, raw.get(c.id)!));
    const byId = new Map(results.map((r) => [r.case.id, r]));

    // Hot session: one session, 50 clients, read → 5 ms → write.
    const hot: HotResult[] = [];
    let rttMicros = await redisRoundTripMicros(redis);
    if (!settings.skip.has('hot')) {
      for (const key of HOT_SERVERS.filter((k) => servers.has(k))) {
        const s = servers.get(key)!;
        const [cookie] = await createSessions(s, 1);
        await get(`${s.url}/hot-stats`);
        const { result: r, rttMicros: rtt } = await rttDuring(
          redis,
          load.run({ url: s.url, path: '/hot', connections: settings.connections, amount: settings.hotRequests, cookies: [cookie], userAgent: BENCH_USER_AGENT, timeout: 60 }),
        );
        const awaitMs = (JSON.parse((await get(`${s.url}/hot-stats`)).body) as { meanMs: number }).meanMs;
        const final = JSON.parse((await get(`${s.url}/ro`, cookie)).body) as { hot?: number | null };
        const finalCounter = Number(final.hot ?? 0);
        hot.push({
          server: key,
          label: s.spec.label,
          requests: r.total,
          ok: r.ok2xx,
          failed: r.non2xx + r.errors,
          seconds: r.duration,
          throughput: r.ok2xx / r.duration,
          finalCounter,
          lostUpdates: r.ok2xx - finalCounter,
          p99: r.p99,
          awaitMs,
          rttMicros: rtt,
          ideal: 1000 / (awaitMs + (2 * rtt) / 1000),
        });
        log(`hot ${key}: ${r.ok2xx} ok, ${r.non2xx + r.errors} failed in ${r.duration.toFixed(2)} s → ${fmt(r.ok2xx / r.duration)} req/s, final counter ${finalCounter}`);
        await sleep(PAUSE_MS);
      }
      rttMicros = (rttMicros + (await redisRoundTripMicros(redis))) / 2;
    }

    // Bytes stored per session (b: a string key; c: a hash).
    const bytes: StoredBytes[] = [];
    if (!settings.skip.has('bytes')) {
      for (const key of ['b', 'c', 'g0', 'g']) {
        const spec = servers.get(key)?.spec;
        if (!spec?.location) continue;
        const sb = await storedBytes(redis, key, spec.location);
        if (sb) bytes.push(sb);
      }
    }

    for (const s of servers.values()) await stopServer(s);
    servers.clear();

    // Round trips per request, through the counting proxy (fresh servers pointed at it).
    const roundTrips: RoundTripRow[] = [];
    if (!settings.skip.has('roundtrips')) {
      proxy = new CountingRedisProxy(PROXY_PORT, { host: new URL(settings.redisUrl).hostname, port: Number(new URL(settings.redisUrl).port || 6379) });
      await proxy.start();
      let port = RT_BASE_PORT;
      for (const key of ROUND_TRIP_SERVERS.filter((k) => selectedKeys.has(k))) {
        const spec = SERVERS.find((s) => s.key === key)!;
        const s = await startServer(spec, port, serverEnv(spec, port, `redis://127.0.0.1:${PROXY_PORT}`, `bench:rt:${key}:`));
        rtServers.push(s);
        port++;
        const n = 20;
        const measure = async (request: string, fn: (i: number) => Promise<unknown>): Promise<void> => {
          await sleep(50);
          proxy!.reset();
          for (let i = 0; i < n; i++) await fn(i);
          await sleep(50);
          const c: ProxyCounts = proxy!.snapshot();
          roundTrips.push({
            server: key,
            label: spec.label,
            request,
            perRequest: c.roundTrips / n,
            bytesUpPerRequest: c.bytesToRedis / n,
            bytesDownPerRequest: c.bytesFromRedis / n,
            byName: Object.fromEntries(Object.entries(c.byName).map(([k, v]) => [k, v / n])),
          });
        };
        const cookies = await createSessions(s, 5);
        await measure('new session (/login, no cookie)', async () => get(`${s.url}/login`));
        await measure('read + change (/rw)', async (i) => get(`${s.url}/rw`, cookies[i % cookies.length]));
        await measure('read only (/ro)', async (i) => get(`${s.url}/ro`, cookies[i % cookies.length]));
        await measure('read on an ordinary route (/peek)', async (i) => get(`${s.url}/peek`, cookies[i % cookies.length]));
        await measure('no cookie (/peek)', async () => get(`${s.url}/peek`));
        if (HOT_ROUND_TRIP_SERVERS.includes(key) && !settings.skip.has('hot')) {
          // Under contention: 50 clients on one session; lock attempts (polls) per request. Concurrent
          // requests may share a round trip (coalesced writes), so this is round trips ÷ requests.
          const [hotCookie] = await createSessions(s, 1);
          await sleep(50);
          proxy.reset();
          const r = await load.run({ url: s.url, path: '/hot', connections: settings.connections, amount: settings.hotRequests, cookies: [hotCookie], userAgent: BENCH_USER_AGENT, timeout: 60 });
          await sleep(50);
          const c = proxy.snapshot();
          roundTrips.push({
            server: key,
            label: spec.label,
            request: `hot session: ${settings.connections} clients, one session (/hot), ${fmt(r.ok2xx / r.duration)} req/s`,
            perRequest: Number((c.roundTrips / r.total).toFixed(2)),
            bytesUpPerRequest: c.bytesToRedis / r.total,
            bytesDownPerRequest: c.bytesFromRedis / r.total,
            byName: Object.fromEntries(Object.entries(c.byName).map(([k, v]) => [k, Number((v / r.total).toFixed(2))])),
          });
        }
        log(`round trips ${key}: ${roundTrips.filter((r) => r.server === key).map((r) => `${r.request} ${r.perRequest}`).join('; ')}`);
      }
    }

    // ------------------------------------------------------------ report
    const md: string[] = [];
    const allRuns = results.flatMap((r) => r.rounds);
    const otherShare = allRuns.reduce((s, r) => s + r.cpu.otherMs, 0) / Math.max(1, allRuns.reduce((s, r) => s + r.cpu.capacityMs, 0));
    md.push(`Machine: ${machine.cpus} cores (${machine.cpuModel}), ${machine.memoryGiB} GiB, ${machine.os}; Node ${machine.node}; Redis ${machine.redis}; PostgreSQL ${machine.postgres}. Run ${machine.date} on commit ${machine.commit}.`);
    md.push('');
    md.push(`Load average before the run: ${machine.loadAverageAtStart.join(' ')}; CPU used by other processes during the measured rounds: ${(100 * otherShare).toFixed(0)}% of the machine.`);
    md.push('');
    md.push(`Settings: ${settings.connections} connections, ${settings.sessions} sessions per contender, warm-up ${settings.warmup} s per case, ${settings.rounds} interleaved rounds × ${settings.duration} s (no-cookie cases ${settings.noCookieDuration} s).`);
    md.push('');
    md.push('### Throughput and latency, 50 sessions');
    md.push('');
    md.push(...loadTable(results.filter((r) => sessionCases.includes(r.case)), byId, true));
    if (noCookieCases.length) {
      md.push('');
      md.push('### No cookie (`/peek`, an ordinary route that reads the session)');
      md.push('');
      md.push(...loadTable(results.filter((r) => r.case.id.endsWith('-nocookie')), byId, false));
    }
    md.push('');
    md.push('### Targets');
    md.push('');
    md.push('| target | ratio of medians | per-round ratios: median (min–max) | met? |');
    md.push('|---|---:|---:|---|');
    const targetRows: Array<{ name: string; ratio: number | null; met: boolean | null }> = [];
    for (const t of TARGETS) {
      const x = byId.get(t.num);
      const y = byId.get(t.den);
      if (!x || !y) continue;
      const perRound = x.rounds.map((r, i) => r.rps / y.rounds[i].rps);
      const rr = x.rpsMedian / y.rpsMedian;
      targetRows.push({ name: t.name, ratio: rr, met: rr >= t.min });
      md.push(`| ${t.name} | ${rr.toFixed(2)}× | ${median(perRound).toFixed(2)}× (${Math.min(...perRound).toFixed(2)}–${Math.max(...perRound).toFixed(2)}×) | ${rr >= t.min ? 'yes' : '**no**'} |`);
    }
    const idealHot = 1 / ((HOT_DELAY_MS * 1000 + 2 * rttMicros) / 1e6);
    for (const h of hot.filter((x) => ['c', 'g'].includes(x.server))) {
      md.push(`| hot session ${h.server}: 0 lost updates | ${h.lostUpdates} lost, ${h.failed} failed | – | ${h.lostUpdates === 0 && h.failed === 0 ? 'yes' : '**no**'} |`);
      targetRows.push({ name: `hot session ${h.server}: 0 lost updates`, ratio: null, met: h.lostUpdates === 0 && h.failed === 0 });
      // Nominal: the 5 ms the handler asks for and the idle round trip; measured: the await's real length and the round trip during the test.
      const nominal = h.throughput / idealHot;
      const measured = h.throughput / h.ideal;
      md.push(
        `| hot session ${h.server}: ≥ 80% of 1 / (handler + 2 round trips) | ${fmt(h.throughput)} req/s = ${(100 * nominal).toFixed(0)}% of ${fmt(idealHot)} (nominal), ${(100 * measured).toFixed(0)}% of ${fmt(h.ideal)} (measured) | – | ${nominal >= 0.8 ? 'yes' : measured >= 0.8 ? 'only against measured times' : '**no**'} |`,
      );
      targetRows.push({ name: `hot session ${h.server}: throughput ≥ 80% of ideal`, ratio: nominal, met: nominal >= 0.8 });
    }
    const rtLimits: Array<[string, number]> = [
      ['read + change (/rw)', 2],
      ['read only (/ro)', 1],
      ['no cookie (/peek)', 0],
    ];
    for (const r of roundTrips.filter((x) => x.server === 'c' || x.server === 'g')) {
      const limit = rtLimits.find(([name]) => name === r.request)?.[1];
      if (limit === undefined) continue;
      md.push(`| round trips ${r.server}, ${r.request}: ≤ ${limit} | ${r.perRequest} | – | ${r.perRequest <= limit ? 'yes' : '**no**'} |`);
      targetRows.push({ name: `round trips ${r.server}, ${r.request} ≤ ${limit}`, ratio: r.perRequest, met: r.perRequest <= limit });
    }
    if (baselineRevision !== null) md.push('', ...baselineTable(results, byId, baselineRevision));
    const references = REFERENCE_RATIOS.filter((t) => byId.has(t.num) && byId.has(t.den));
    if (references.length) {
      md.push('');
      md.push('### Where the ceiling goes (reference ratios, not targets)');
      md.push('');
      md.push('| ratio | of medians | per round: median (min–max) |');
      md.push('|---|---:|---:|');
      for (const t of references) {
        const x = byId.get(t.num)!;
        const y = byId.get(t.den)!;
        const perRound = x.rounds.map((r, i) => r.rps / y.rounds[i].rps);
        md.push(`| ${t.name} | ${(x.rpsMedian / y.rpsMedian).toFixed(2)}× | ${median(perRound).toFixed(2)}× (${Math.min(...perRound).toFixed(2)}–${Math.max(...perRound).toFixed(2)}×) |`);
      }
    }
    if (hot.length) {
      const ideal = idealHot;
      md.push('');
      md.push(`### Hot session: ${settings.connections} clients, one session, ${settings.hotRequests} requests, read → ${HOT_DELAY_MS} ms await → write`);
      md.push('');
      md.push(
        `Nominal: Redis round trip measured from Node on an idle connection ${rttMicros.toFixed(0)} µs, so 1 / (${HOT_DELAY_MS} ms + 2 round trips) = ${fmt(ideal)} req/s; target ≥ 80% = ${fmt(ideal * 0.8)} req/s. ` +
          'Measured: the mean real length of the handler\'s await and the median Redis round trip during the test give each contender\'s own "ideal".',
      );
      md.push('');
      md.push('| contender | 2xx | failed | seconds | req/s | final counter | lost updates | p99 ms | await ms | RTT during µs | req/s ÷ measured ideal |');
      md.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
      for (const h of hot) {
        md.push(
          `| ${h.server}: ${h.label} | ${h.ok} | ${h.failed} | ${h.seconds.toFixed(2)} | ${fmt(h.throughput)} | ${h.finalCounter} | ${h.lostUpdates} | ${fmt(h.p99)} | ${h.awaitMs.toFixed(2)} | ${fmt(h.rttMicros)} | ${SERVERS.find((x) => x.key === h.server)?.ours ? `${(100 * (h.throughput / h.ideal)).toFixed(0)}%` : '– (no lock)'} |`,
        );
      }
    }
    if (roundTrips.length) {
      // EVALSHA <sha>… → the script's name, when the driver's script module is where it is today.
      const scriptNames = new Map<string, string>();
      const scriptsModule = (await import(pathToFileURL(join(SNAPSHOT, 'lib', 'drivers', 'redis-scripts.js')).href).catch(() => null)) as {
        ALL_SCRIPTS?: Array<{ name: string; sha: string }>;
      } | null;
      for (const sc of scriptsModule?.ALL_SCRIPTS ?? []) scriptNames.set(`EVALSHA ${sc.sha.slice(0, 8)}…`, `EVALSHA(${sc.name})`);
      for (const r of roundTrips) r.byName = Object.fromEntries(Object.entries(r.byName).map(([k, v]) => [scriptNames.get(k) ?? k, v]));
      md.push('');
      md.push('### Redis round trips per request (counting proxy, one request at a time)');
      md.push('');
      md.push('| contender | request | round trips | commands | bytes to / from Redis |');
      md.push('|---|---|---:|---|---:|');
      for (const r of roundTrips) {
        const names = Object.entries(r.byName).map(([k, v]) => `${k}${v === 1 ? '' : ` ×${v}`}`).join(', ') || '–';
        md.push(`| ${r.server}: ${r.label} | ${r.request} | ${r.perRequest} | ${names} | ${fmt(r.bytesUpPerRequest)} / ${fmt(r.bytesDownPerRequest)} |`);
      }
    }
    if (bytes.length) {
      md.push('');
      md.push('### Bytes stored per session (one session after the run)');
      md.push('');
      md.push('| contender | key | key bytes | value bytes (fields + values) | Redis encoding | MEMORY USAGE bytes |');
      md.push('|---|---|---:|---|---|---:|');
      for (const b of bytes) {
        const fields = Object.entries(b.fields).map(([f, n]) => `${f}: ${n}`).join(', ');
        md.push(`| ${b.contender} | \`${b.key}\` | ${b.keyBytes} | ${b.valueBytes} (${fields}) | ${b.encoding} | ${b.memoryUsage ?? '–'} |`);
      }
    }
    md.push('');
    md.push(`Total run time: ${((Date.now() - t0) / 1000).toFixed(0)} s.`);
    const report = md.join('\n');
    console.log('\n' + report);
    await mkdir(RESULTS_DIR, { recursive: true });
    await writeFile(join(RESULTS_DIR, 'latest.md'), report + '\n');
    await writeFile(join(RESULTS_DIR, 'latest.json'), JSON.stringify({ machine, settings: { ...settings, skip: [...settings.skip], profile: [...settings.profile] }, results, targets: targetRows, hot, rttMicros, roundTrips, bytes }, null, 2));
    log(`written: bench/results/latest.md, bench/results/latest.json`);
  } finally {
    load.stop();
    for (const s of [...servers.values(), ...rtServers]) await stopServer(s).catch(() => undefined);
    await proxy?.stop();
    await cleanRedis(redis).catch(() => 0);
    if (usesPostgres) for (const t of PG_TABLES) await db.query(`DROP TABLE IF EXISTS ${t}`).catch(() => undefined);
    await rm(BENCH_DIR, { recursive: true, force: true });
    await rm(SNAPSHOT, { recursive: true, force: true });
    redis.disconnect();
    await db.end();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
