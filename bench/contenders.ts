/**
 * What runs: the server processes (one per contender) and the load cases measured against them.
 * Keys match the issue: (a) ceiling, (b) express-session + connect-redis, (c)/(d) this module on
 * Redis, (e) File driver vs session-file-store, (f) Database driver on PostgreSQL vs
 * connect-pg-simple, (g) Fastify: this module vs @fastify/session.
 */

export type StoreKind = 'none' | 'redis' | 'file' | 'postgres';

export interface ServerSpec {
  key: string;
  /** File under dist/bench/servers/ (without .js). */
  file: string;
  label: string;
  store: StoreKind;
  /** This module (cookie `ML_SESS`) or a baseline library. */
  ours: boolean;
  /** Redis key prefix / PostgreSQL table / directory name, depending on `store`. */
  location?: string;
  /** Extra environment of the server process. */
  env?: Record<string, string>;
  /** Only with `--experiments`: variants that show what a change in lib/ would bring; not contenders. */
  experiment?: boolean;
  /** Directory of the server's file when it is not this build's (the `--baseline` twins). */
  dir?: string;
}

export const SERVERS: ServerSpec[] = [
  { key: 'a', file: 'none', label: 'no session middleware (ceiling)', store: 'none', ours: false },
  { key: 'b', file: 'express-session-redis', label: 'express-session + connect-redis (node-redis)', store: 'redis', ours: false, location: 'bench:b:' },
  { key: 'c', file: 'ml-redis', label: 'this module, Redis, locking', store: 'redis', ours: true, location: 'bench:c:' },
  { key: 'd', file: 'ml-redis', label: 'this module, Redis, @SessionReadOnly()', store: 'redis', ours: true, location: 'bench:d:' },
  { key: 'e', file: 'ml-file', label: 'this module, File driver', store: 'file', ours: true, location: 'e-ml-file' },
  { key: 'e0', file: 'express-session-file', label: 'express-session + session-file-store', store: 'file', ours: false, location: 'e0-session-file-store' },
  { key: 'f', file: 'ml-postgres', label: 'this module, Database driver (PostgreSQL)', store: 'postgres', ours: true, location: 'bench_ml_sessions' },
  { key: 'f0', file: 'express-session-pg', label: 'express-session + connect-pg-simple', store: 'postgres', ours: false, location: 'bench_cps_sessions' },
  { key: 'g', file: 'ml-redis-fastify', label: 'Fastify: this module, Redis, locking', store: 'redis', ours: true, location: 'bench:g:' },
  { key: 'g0', file: 'fastify-session-redis', label: 'Fastify: @fastify/session + connect-redis', store: 'redis', ours: false, location: 'bench:g0:' },
  // Experiments: the same servers with ioredis' auto-pipelining (commands of one tick share one write).
  { key: 'cx', file: 'ml-redis', label: 'experiment: (c) + enableAutoPipelining', store: 'redis', ours: true, location: 'bench:cx:', env: { ML_REDIS_OPTIONS: '{"enableAutoPipelining":true}' }, experiment: true },
  { key: 'gx', file: 'ml-redis-fastify', label: 'experiment: (g) + enableAutoPipelining', store: 'redis', ours: true, location: 'bench:gx:', env: { ML_REDIS_OPTIONS: '{"enableAutoPipelining":true}' }, experiment: true },
  // References, not contenders: (a) with the hooks this module mounts (a global interceptor, a
  // middleware on every route) doing nothing, so a run shows what Nest itself charges for them.
  { key: 'ai', file: 'none-mounting', label: '(a) + a pass-through global interceptor', store: 'none', ours: false, env: { MOUNTING: 'interceptor' } },
  { key: 'am', file: 'none-mounting', label: '(a) + a pass-through interceptor and middleware', store: 'none', ours: false, env: { MOUNTING: 'both' } },
];

export interface LoadCase {
  /** Row name in the report. */
  id: string;
  server: string;
  path: string;
  /** With the 50 pre-created sessions, or without any cookie. */
  withSessions: boolean;
  label: string;
}

/** Session cases: 50 distinct sessions spread over the 50 connections (connection i uses session i). */
export const SESSION_CASES: LoadCase[] = [
  { id: 'a', server: 'a', path: '/rw', withSessions: false, label: '(a) no session middleware' },
  { id: 'ai', server: 'ai', path: '/rw', withSessions: false, label: '(a′) reference: (a) + a pass-through global interceptor' },
  { id: 'am', server: 'am', path: '/rw', withSessions: false, label: '(a″) reference: (a) + a pass-through interceptor and middleware' },
  { id: 'b', server: 'b', path: '/rw', withSessions: true, label: '(b) express-session + connect-redis, read+change' },
  { id: 'b-read', server: 'b', path: '/ro', withSessions: true, label: '(b) same, route only reads' },
  { id: 'c', server: 'c', path: '/rw', withSessions: true, label: '(c) this module, Redis, locking, read+change' },
  { id: 'd', server: 'd', path: '/ro', withSessions: true, label: '(d) this module, Redis, @SessionReadOnly()' },
  { id: 'e', server: 'e', path: '/rw', withSessions: true, label: '(e) this module, File driver, read+change' },
  { id: 'e0', server: 'e0', path: '/rw', withSessions: true, label: '(e) session-file-store, read+change' },
  { id: 'f', server: 'f', path: '/rw', withSessions: true, label: '(f) this module, PostgreSQL, read+change' },
  { id: 'f0', server: 'f0', path: '/rw', withSessions: true, label: '(f) connect-pg-simple, read+change' },
  { id: 'g', server: 'g', path: '/rw', withSessions: true, label: '(g) Fastify: this module, Redis, read+change' },
  { id: 'g0', server: 'g0', path: '/rw', withSessions: true, label: '(g) Fastify: @fastify/session + connect-redis, read+change' },
  { id: 'cx', server: 'cx', path: '/rw', withSessions: true, label: 'experiment: (c) with ioredis enableAutoPipelining' },
  { id: 'gx', server: 'gx', path: '/rw', withSessions: true, label: 'experiment: (g) with ioredis enableAutoPipelining' },
];

/** No-cookie cases: an ordinary route that reads the session, hit without any cookie. */
export const NO_COOKIE_CASES: LoadCase[] = ['a', 'b', 'c', 'e', 'e0', 'f', 'f0', 'g', 'g0'].map((server) => ({
  id: `${server}-nocookie`,
  server,
  path: '/peek',
  withSessions: false,
  label: `${server}, no cookie: ${SERVERS.find((s) => s.key === server)!.label}`,
}));

/** Hot session: contenders that run it (the issue asks for (b), (c), (g); the others are shown too). */
export const HOT_SERVERS = ['b', 'c', 'g', 'g0', 'e', 'e0', 'f', 'f0'];

/** Hot session through the counting proxy: lock attempts per request under contention. */
export const HOT_ROUND_TRIP_SERVERS = ['c', 'g'];

/** Round trips are counted for the Redis contenders. */
export const ROUND_TRIP_SERVERS = ['b', 'c', 'g', 'g0'];

/** Targets of the issue: numerator / denominator ≥ min (req/s medians of the same run). */
export const TARGETS: Array<{ name: string; num: string; den: string; min: number }> = [
  { name: '(c) ≥ 1.1× (b)', num: 'c', den: 'b', min: 1.1 },
  { name: '(c) ≥ 0.8× (a)', num: 'c', den: 'a', min: 0.8 },
  { name: '(d) ≥ 1.3× (b)', num: 'd', den: 'b', min: 1.3 },
  { name: '(g) ≥ 1.1× @fastify/session', num: 'g', den: 'g0', min: 1.1 },
  { name: '(e) ≥ 2× session-file-store', num: 'e', den: 'e0', min: 2 },
  { name: '(f) ≥ 1.0× connect-pg-simple', num: 'f', den: 'f0', min: 1.0 },
];

/**
 * Not targets: ratios that say where (a)'s requests per second go. (a″) ÷ (a) is what Nest charges
 * for the interceptor and middleware any session layer built this way needs; (c) and (d) ÷ (a″) is
 * what the session work costs on top of them.
 */
export const REFERENCE_RATIOS: Array<{ name: string; num: string; den: string }> = [
  { name: "(a′) pass-through interceptor ÷ (a)", num: 'ai', den: 'a' },
  { name: "(a″) pass-through interceptor and middleware ÷ (a)", num: 'am', den: 'a' },
  { name: "(c) ÷ (a″): the session work on top of Nest's hooks", num: 'c', den: 'am' },
  { name: "(d) ÷ (a″): the same, read-only", num: 'd', den: 'am' },
];
