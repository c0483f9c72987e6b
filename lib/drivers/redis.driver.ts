import type { Cluster, ClusterOptions, Redis, RedisOptions } from 'ioredis';
import { isValidSessionId, newLockToken } from '../contracts/session-id.js';
import { SessionException, SessionLockException, SessionStoreUnavailableException } from '../contracts/session-exception.js';
import type { LockOptions, SessionDriver } from '../contracts/session-driver.interface.js';
import type { RedisDriverOptions } from '../contracts/session-options.interface.js';
import type { SessionMeta, SessionRecord, SessionSummary } from '../contracts/session-record.interface.js';
import { ALL_SCRIPTS, DESTROY_IF_USER_SCRIPT, EXTEND_SCRIPT, INDEX_MEMBERS_SCRIPT, UNLOCK_SCRIPT, WRITE_SCRIPT, type LuaScript } from './redis-scripts.js';

/** Default prefix of every key the driver writes. */
export const DEFAULT_REDIS_KEY_PREFIX = 'ml_sess:';

/**
 * Connection defaults for clients the driver creates. They make an outage visible within a bounded
 * time instead of queueing requests behind a dead connection, and never replay a command after its
 * caller was already told it failed. Anything in `redis.options` overrides them.
 */
export const REDIS_CLIENT_DEFAULTS = {
  /** Fail at once while disconnected instead of queueing (the caller answers 503). */
  enableOfflineQueue: false,
  /** Reject a command in flight when its connection drops, at the first reconnect attempt. */
  maxRetriesPerRequest: 0,
  /** A write reported as failed must not be resent behind the caller's back after a reconnect. */
  autoResendUnfulfilledCommands: false,
  /** A stopped or unreachable server costs at most this long per connection attempt... */
  connectTimeout: 2000,
  /** ...and a server that stops answering (overloaded, paused, network black hole) this long per command. */
  commandTimeout: 2000,
} as const;

/** Reconnects quickly (100 ms, 200 ms, … capped at 1 s), so the driver recovers soon after Redis returns. */
const retryStrategy = (times: number): number => Math.min(times * 100, 1000);

/** Deadline for a command on a client the application passed in and that has no `commandTimeout` of its own. */
const FOREIGN_CLIENT_DEADLINE_MS = 5000;
/** How long `open()` waits for a first connection before failing the application start. */
const OPEN_TIMEOUT_MS = 5000;
/** Lock waits sleep at least this long between attempts, doubling up to the cap. */
const LOCK_BACKOFF_MIN_MS = 5;
const LOCK_BACKOFF_MAX_MS = 50;

/** Server replies that mean "not available right now" rather than "your command is wrong". */
const UNAVAILABLE_REPLIES = ['LOADING', 'BUSY', 'MASTERDOWN', 'CLUSTERDOWN', 'TRYAGAIN', 'READONLY', 'OOM', 'NOREPLICAS', 'MOVED', 'ASK'];

type CommandArg = string | number;

/** The slice of the ioredis `Redis` / `Cluster` API this driver uses; both classes satisfy it. */
interface RedisLike {
  readonly status: string;
  readonly isCluster?: boolean;
  readonly options?: { keyPrefix?: string; commandTimeout?: number; redisOptions?: { commandTimeout?: number } };
  /** The connection's socket (standalone / Sentinel clients); see `coalesceWrites`. */
  readonly stream?: { cork?: () => void; uncork?: () => void };
  evalsha(sha: string, numKeys: number, ...args: CommandArg[]): Promise<unknown>;
  eval(lua: string, numKeys: number, ...args: CommandArg[]): Promise<unknown>;
  get(key: string): Promise<string | null>;
  set(key: string, value: string, ...options: CommandArg[]): Promise<string | null>;
  pexpire(key: string, ms: number, mode: 'NX' | 'GT'): Promise<number>;
  zadd(key: string, mode: 'GT', score: number, member: string): Promise<number | string>;
  zremrangebyscore(key: string, min: string, max: number): Promise<number>;
  del(...keys: string[]): Promise<number>;
  zrem(key: string, ...members: string[]): Promise<number>;
  script(subcommand: 'LOAD', lua: string): Promise<unknown>;
  connect(): Promise<void>;
  quit(): Promise<unknown>;
  disconnect(): void;
  on(event: string, listener: (...args: unknown[]) => void): unknown;
  removeListener(event: string, listener: (...args: unknown[]) => void): unknown;
  nodes?(role: 'master'): RedisLike[];
}

/**
 * Sessions in Redis (standalone, Sentinel or Cluster) through ioredis.
 *
 * - A record is one string (`<evictAt>\n<meta JSON>\n<payload>`) whose key TTL is `evictAt - now`,
 *   so `gc()` has nothing to do.
 * - Locks are `SET NX PX` with a unique token, sent in the same write as the `GET` of the record
 *   (`lockAndRead`: one round trip, no Lua). Writes are fenced by a small Lua script that checks the
 *   token first (`writeAndUnlock`: one round trip); release and extend are Lua compare-and-delete /
 *   compare-and-expire.
 * - Commands issued during one event-loop turn leave in one socket write (`coalesceWrites`), as
 *   node-redis does: under load, many requests share one system call each way.
 * - A user index (a sorted set per user, expiring with its sessions) serves `listByUser` and
 *   `destroyByUser` without scanning the key space. It may hold extra entries (a session that
 *   signed out or moved to another user); readers check the owner and prune them.
 * - An outage fails each call within a bounded time with `SessionStoreUnavailableException`
 *   (never "no session"), and the driver reconnects by itself.
 *
 * See docs/drivers/redis.md for the key layout and the Cluster consistency notes.
 */
export class RedisDriver implements SessionDriver {
  private readonly prefix: string;
  private client: RedisLike | null = null;
  /** True when the driver created the client: only then may it quit it. */
  private owned = false;
  private cluster = false;
  private deadlineMs = FOREIGN_CLIENT_DEADLINE_MS;
  private ownDeadline = true;
  private closed = false;
  /** The socket corked until the end of this event-loop turn, if any (see `coalesceWrites`). */
  private corkedStream: { uncork?: () => void } | null = null;
  private readonly uncork = (): void => {
    const stream = this.corkedStream;
    this.corkedStream = null;
    stream?.uncork?.();
  };
  /** The latest connection error, kept as the `cause` of the next 503 (never logged: it may name hosts). */
  private lastConnectionError: unknown = undefined;
  private readonly onClientError = (err: unknown): void => {
    this.lastConnectionError = err;
  };

  /**
   * @param options `url`, ioredis `options` (Sentinel included), an existing `client`, or `cluster`
   *   start-up nodes (then `options` are ioredis `ClusterOptions`); `keyPrefix` defaults to `ml_sess:`.
   */
  constructor(private readonly options: RedisDriverOptions) {
    if (!options.client && !options.cluster?.length && !options.url && !options.options) {
      throw new SessionException('The redis session driver needs redis.url, redis.options, redis.client or redis.cluster: set one of them (e.g. { url: "redis://127.0.0.1:6379" }).');
    }
    if (!options.client && options.cluster?.length && options.url) {
      // ioredis' Cluster takes no URL: its credentials would be dropped without a word.
      throw new SessionException('redis.url is not used with redis.cluster: remove it, and give the nodes\' password or TLS settings in redis.options.redisOptions (ioredis ClusterOptions).');
    }
    this.prefix = options.keyPrefix ?? DEFAULT_REDIS_KEY_PREFIX;
  }

  /** Connects (or adopts the application's client), waits until it is ready and preloads the scripts. */
  async open(): Promise<void> {
    if (this.client) return;
    this.closed = false;
    const client = await this.createClient();
    this.client = client;
    this.cluster = client.isCluster === true;
    const commandTimeout = client.options?.commandTimeout ?? client.options?.redisOptions?.commandTimeout;
    // Our own clients time out by themselves; the margin only covers a wedged client. A foreign
    // client may queue forever, so it gets a deadline of its own.
    this.deadlineMs = commandTimeout ? commandTimeout + 1000 : FOREIGN_CLIENT_DEADLINE_MS;
    // A standalone client with a commandTimeout bounds every command itself: a deadline of our own
    // (a timer and a race per call) would only repeat it. Foreign clients without one, and Cluster
    // clients (which may hold commands while they refresh their slots), keep ours.
    this.ownDeadline = !(commandTimeout && !this.cluster);
    try {
      await waitUntilReady(client, OPEN_TIMEOUT_MS);
    } catch (err) {
      if (this.owned) client.disconnect();
      this.client = null;
      throw new SessionStoreUnavailableException(`Could not connect to Redis within ${OPEN_TIMEOUT_MS} ms at start-up: check redis.url / redis.options / redis.cluster and that Redis is running.`, { cause: err });
    }
    await this.preloadScripts(client);
  }

  /** Quits the client if the driver created it; an application's client is left connected. */
  async close(): Promise<void> {
    const client = this.client;
    this.client = null;
    this.closed = true;
    if (!client || !this.owned) return;
    try {
      if (client.status === 'ready') await withDeadline(client.quit(), 2000);
      else client.disconnect();
    } catch {
      client.disconnect();
    }
  }

  /** One round trip (GET). Errors are thrown, never reported as "no session". */
  async read(id: string): Promise<SessionRecord | null> {
    assertId(id);
    return decodeRecord(await this.run((c) => getValue(c, this.recordKey(id))));
  }

  /** Creates or replaces the record with a TTL of `evictAt - now`; fenced when `lockToken` is given. */
  async write(id: string, record: SessionRecord, lockToken?: string): Promise<void> {
    assertId(id);
    await this.store(id, record, lockToken ?? '', false);
  }

  /** Deletes the record. Its user-index entry is pruned by the next `listByUser`/`destroyByUser`. */
  async destroy(id: string): Promise<void> {
    assertId(id);
    // The lock goes too: a request still holding it must not resurrect the session with its write.
    await this.run((c) => c.del(this.recordKey(id), this.lockKey(id)));
  }

  /** Redis expires keys by their TTL: nothing to collect. */
  async gc(): Promise<number> {
    return 0;
  }

  /** `SET NX PX` with a unique token, waiting up to `waitMs`; throws `SessionLockException` on timeout. */
  async lock(id: string, options: LockOptions): Promise<string> {
    assertId(id);
    return (await this.acquire(id, options, false)).token;
  }

  /** Compare-and-delete: a token that no longer owns the lock releases nothing. */
  async unlock(id: string, token: string): Promise<void> {
    assertId(id);
    await this.run((c) => this.evalScript(c, UNLOCK_SCRIPT, [this.lockKey(id)], [token]));
  }

  /** Renews the lock for its owner (compare-and-PEXPIRE). */
  async extend(id: string, token: string, ttlMs: number): Promise<boolean> {
    assertId(id);
    const ttl = String(Math.max(1, Math.ceil(ttlMs)));
    const reply = this.run((c) => this.evalScript(c, EXTEND_SCRIPT, [this.lockKey(id)], [token, ttl]));
    // Someone waits on a renewal: the next request of a hot session (a hand-over), or a long
    // handler. So this turn's commands leave now instead of at its end (coalesceWrites).
    this.uncork();
    return Number(await reply) === 1;
  }

  /** Lock and read in one round trip per attempt (`SET NX PX` and `GET` in one write). */
  async lockAndRead(id: string, options: LockOptions): Promise<{ token: string; record: SessionRecord | null }> {
    assertId(id);
    return this.acquire(id, options, true);
  }

  /** Fenced write and release in one round trip (on Cluster, plus one to the user index's node when a user is signed in). */
  async writeAndUnlock(id: string, record: SessionRecord, token: string): Promise<void> {
    assertId(id);
    await this.store(id, record, token, true);
  }

  /** Live sessions of `userId`, from its index; entries whose session is gone or moved are pruned. */
  async listByUser(userId: string): Promise<SessionSummary[]> {
    const indexKey = this.indexKey(userId);
    const ids = await this.indexMembers(indexKey);
    const now = Date.now();
    // Separate commands, not one MGET: on Cluster the sessions live in different slots. ioredis
    // writes them back to back, so they still share one round trip per node.
    const rows = await Promise.all(ids.map((id) => this.run((c) => getValue(c, this.recordKey(id)))));
    const out: SessionSummary[] = [];
    const stale: string[] = [];
    ids.forEach((id, i) => {
      const record = decodeRecord(rows[i], now);
      if (record && record.meta.userId === userId) out.push({ id, meta: record.meta });
      else stale.push(id);
    });
    if (stale.length) await this.run((c) => c.zrem(indexKey, ...stale));
    return out;
  }

  /** Destroys every session of `userId` except `exceptId`; each deletion re-checks the owner atomically. */
  async destroyByUser(userId: string, exceptId?: string): Promise<number> {
    const indexKey = this.indexKey(userId);
    const ids = (await this.indexMembers(indexKey)).filter((id) => id !== exceptId);
    if (!ids.length) return 0;
    const results = await Promise.all(
      ids.map((id) => this.run((c) => this.evalScript(c, DESTROY_IF_USER_SCRIPT, [this.recordKey(id), this.lockKey(id)], [userId]))),
    );
    await this.run((c) => c.zrem(indexKey, ...ids));
    return results.reduce<number>((sum, r) => sum + Number(r), 0);
  }

  private recordKey(id: string): string {
    return `${this.prefix}{${id}}`;
  }

  private lockKey(id: string): string {
    return `${this.prefix}{${id}}:lock`;
  }

  /** User IDs are stored raw: the key is still unique per user, whatever characters the ID holds. */
  private indexKey(userId: string): string {
    return `${this.prefix}{u:${userId}}`;
  }

  private async indexMembers(indexKey: string): Promise<string[]> {
    const ids = (await this.run((c) => this.evalScript(c, INDEX_MEMBERS_SCRIPT, [indexKey], [Date.now()]))) as string[];
    // Only IDs the driver itself wrote can be there; the check keeps a tampered index away from key names.
    return ids.filter(isValidSessionId);
  }

  private async acquire(id: string, { waitMs, ttlMs }: LockOptions, withRecord: boolean): Promise<{ token: string; record: SessionRecord | null }> {
    const token = newLockToken();
    const lockKey = this.lockKey(id);
    const recordKey = this.recordKey(id);
    const ttl = Math.max(1, Math.ceil(ttlMs));
    const deadline = Date.now() + waitMs;
    let backoff = LOCK_BACKOFF_MIN_MS;
    for (;;) {
      // The GET travels with the SET and is discarded when the lock was not taken. When it was, the
      // value read is the current one: every write of a live session is fenced by this lock, and a
      // destroy in between only makes the GET read "absent", which is the truth.
      const [acquired, value] = await this.run((c) => Promise.allSettled([c.set(lockKey, token, 'PX', ttl, 'NX'), withRecord ? getValue(c, recordKey) : null]));
      if (acquired.status === 'rejected') throw toSessionError(acquired.reason);
      if (value.status === 'rejected') {
        // Locked but unread: give the lock back now rather than block the session until its TTL.
        if (acquired.value === 'OK') await this.unlock(id, token).catch(() => undefined);
        throw toSessionError(value.reason);
      }
      if (acquired.value === 'OK') return { token, record: withRecord ? decodeRecord(value.value) : null };
      const now = Date.now();
      if (now >= deadline) throw new SessionLockException();
      const sleepMs = Math.max(1, Math.min(backoff, deadline - now));
      backoff = Math.min(backoff * 2, LOCK_BACKOFF_MAX_MS);
      await sleep(sleepMs);
    }
  }

  private async store(id: string, record: SessionRecord, token: string, release: boolean): Promise<void> {
    const now = Date.now();
    const userId = record.meta.userId;
    const ttlMs = Math.max(1, Math.ceil(record.evictAt - now));
    const recordKey = this.recordKey(id);
    const value = encodeRecord(record);
    // The index entry goes first (a crash in between leaves an extra entry, filtered out on read,
    // never a session that "sign out everywhere" misses). Standalone: in the same write as the
    // session's commands. Cluster: the index is in another slot, so it is awaited first.
    const index = userId === null || userId === undefined ? undefined : this.run((c) => this.addToIndex(c, this.indexKey(String(userId)), id, record.evictAt, ttlMs, now));
    if (index && this.cluster) await index;
    const write = this.run((c) =>
      token === '' ? c.set(recordKey, value, 'PX', ttlMs) : this.evalScript(c, WRITE_SCRIPT, [recordKey, this.lockKey(id)], [token, value, ttlMs, release ? '1' : '0']),
    );
    // A failed index update fails the call too (e.g. a server older than Redis 7.0), even if the record landed.
    const [written] = index ? await Promise.all([write, index]) : [await write];
    if (written !== 'OK' && Number(written) !== 1) {
      throw new SessionLockException('The session lock expired before the write; the change was not saved. Raise lock.ttl if requests run this long.');
    }
  }

  /**
   * Adds `id` to a user's index with score `evictAt` (never lowering it), prunes dead members, and
   * keeps the index alive as long as its longest-lived session: `PEXPIRE NX` gives a new index a
   * TTL, `PEXPIRE GT` only ever lengthens it. Four plain commands in one write (Redis >= 7.0).
   */
  private async addToIndex(c: RedisLike, indexKey: string, id: string, evictAt: number, ttlMs: number, now: number): Promise<void> {
    await Promise.all([c.zadd(indexKey, 'GT', evictAt, id), c.zremrangebyscore(indexKey, '-inf', now), c.pexpire(indexKey, ttlMs, 'NX'), c.pexpire(indexKey, ttlMs, 'GT')]);
  }

  /** EVALSHA, falling back to EVAL when the server lost its script cache (restart, failover, SCRIPT FLUSH). */
  private evalScript(client: RedisLike, script: LuaScript, keys: string[], args: CommandArg[]): Promise<unknown> {
    // A plain promise chain, not an async function: this runs on every changing request.
    return client.evalsha(script.sha, keys.length, ...keys, ...args).catch((err: unknown) => {
      if (!isNoScript(err)) throw err;
      return client.eval(script.lua, keys.length, ...keys, ...args);
    });
  }

  /**
   * Runs one store operation: fails fast while disconnected, bounds its duration, and turns every
   * connection-level failure into `SessionStoreUnavailableException` (503).
   */
  private run<T>(op: (client: RedisLike) => Promise<T>): Promise<T> {
    const client = this.client;
    if (!client) {
      return Promise.reject(
        new SessionException(this.closed ? 'The redis session driver is closed.' : 'The redis session driver is not open: call open() first (the module does it at start-up).'),
      );
    }
    if (client.status !== 'ready') {
      return Promise.reject(new SessionStoreUnavailableException('The Redis session store is not connected (it is reconnecting); retry shortly.', { cause: this.lastConnectionError }));
    }
    if (this.corkedStream === null && !this.cluster) this.coalesceWrites(client);
    // A plain promise chain, not an async function (one promise and microtask less per command).
    // `op` may throw synchronously (a bad argument); that too becomes a rejection.
    let pending: Promise<T>;
    try {
      pending = op(client);
    } catch (err) {
      return Promise.reject(toSessionError(err));
    }
    return (this.ownDeadline ? withDeadline(pending, this.deadlineMs) : pending).catch(rethrowAsSessionError);
  }

  /**
   * Holds this turn's commands in the socket and sends them in one write when the turn ends
   * (`setImmediate`), like node-redis does. Replies to many requests arrive in one read and the
   * commands they trigger go back in one write: on a loaded server this saves a system call (and a
   * wake-up of Redis) per command, the largest CPU cost of a session request. A lone command waits
   * for the end of the current turn only, which is microseconds.
   * Cluster clients are left alone: their commands go to several sockets.
   */
  private coalesceWrites(client: RedisLike): void {
    const stream = client.stream;
    if (!stream?.cork || !stream.uncork) return;
    stream.cork();
    this.corkedStream = stream;
    setImmediate(this.uncork);
  }

  private async createClient(): Promise<RedisLike> {
    const { client, cluster, url, options } = this.options;
    if (client) {
      this.owned = false;
      return client as RedisLike;
    }
    const ioredis = await import('ioredis');
    let created: Redis | Cluster;
    if (cluster?.length) {
      const user = (options ?? {}) as ClusterOptions;
      const { enableOfflineQueue: _ignored, ...redisDefaults } = REDIS_CLIENT_DEFAULTS;
      created = new ioredis.Cluster(cluster, {
        enableOfflineQueue: false,
        ...user,
        redisOptions: { ...redisDefaults, ...user.redisOptions },
      });
    } else {
      const merged: RedisOptions = { ...REDIS_CLIENT_DEFAULTS, retryStrategy, ...(options as RedisOptions | undefined) };
      created = url ? new ioredis.Redis(url, merged) : new ioredis.Redis(merged);
    }
    this.owned = true;
    const wrapped = created as unknown as RedisLike;
    // Without a listener ioredis prints every reconnect failure; the driver reports outages as 503s instead.
    wrapped.on('error', this.onClientError);
    if (this.options.cluster?.length) wrapped.on('node error', this.onClientError);
    return wrapped;
  }

  /** Best effort: with the scripts cached, the very first call of each is one round trip too. */
  private async preloadScripts(client: RedisLike): Promise<void> {
    const targets = client.isCluster && client.nodes ? client.nodes('master') : [client];
    await Promise.allSettled(targets.flatMap((node) => ALL_SCRIPTS.map((s) => withDeadline(node.script('LOAD', s.lua), this.deadlineMs))));
  }
}

function rethrowAsSessionError(err: unknown): never {
  throw toSessionError(err);
}

function assertId(id: string): void {
  if (!isValidSessionId(id)) throw new SessionException('Refusing a malformed session ID before it reaches storage.');
}

/** GET, with a key of another type (WRONGTYPE: not a record of this driver) read as absent; a write replaces it. */
function getValue(client: RedisLike, key: string): Promise<string | null> {
  return client.get(key).catch((err: unknown) => {
    if (err instanceof Error && err.message.startsWith('WRONGTYPE')) return null;
    throw err;
  });
}

/**
 * A record as stored: `<evictAt>\n<meta JSON>\n<payload>`. JSON never contains a raw line break,
 * so the first two line breaks split it however the payload looks, and no payload escaping is needed.
 */
function encodeRecord(record: SessionRecord): string {
  return `${record.evictAt}\n${JSON.stringify(record.meta)}\n${record.payload}`;
}

/** The stored string → a record; a missing, expired or undecodable one reads as absent (a fresh session, never a crash). */
function decodeRecord(value: string | null | undefined, now = Date.now()): SessionRecord | null {
  if (typeof value !== 'string') return null;
  const a = value.indexOf('\n');
  const b = a < 0 ? -1 : value.indexOf('\n', a + 1);
  if (b < 0) return null;
  const evictAt = Number(value.slice(0, a));
  if (!Number.isFinite(evictAt) || evictAt <= now) return null;
  const meta = parseMeta(value.slice(a + 1, b));
  return meta ? { payload: value.slice(b + 1), meta, evictAt } : null;
}

function parseMeta(json: string): SessionMeta | null {
  try {
    const meta = JSON.parse(json) as SessionMeta;
    return typeof meta === 'object' && meta !== null ? meta : null;
  } catch {
    return null;
  }
}

function isNoScript(err: unknown): boolean {
  return err instanceof Error && err.message.startsWith('NOSCRIPT');
}

function toSessionError(err: unknown): SessionException {
  if (err instanceof SessionException) return err;
  if (err instanceof Error && err.name === 'ReplyError') {
    const code = err.message.split(' ', 1)[0];
    if (UNAVAILABLE_REPLIES.includes(code)) {
      return new SessionStoreUnavailableException(`The Redis session store is temporarily unable to serve (${code}); retry shortly.`, { cause: err });
    }
    return new SessionException(`Redis refused a session command (${code}): check that the key prefix is used by this library only.`, 500, { cause: err });
  }
  return new SessionStoreUnavailableException('The Redis session store did not answer (connection lost, refused or timed out); retry shortly and check that Redis is reachable.', { cause: err });
}

/** Rejects with a 503 after `ms`; the late settlement of `promise` is absorbed so it never becomes an unhandled rejection. */
function withDeadline<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new SessionStoreUnavailableException(`The Redis session store did not answer within ${ms} ms; retry shortly.`)), ms);
    timer.unref();
  });
  promise.catch(() => {});
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Resolves once the client is ready (connecting a lazy one), or rejects after `ms`. */
function waitUntilReady(client: RedisLike, ms: number): Promise<void> {
  if (client.status === 'ready') return Promise.resolve();
  return new Promise<void>((resolve, reject) => {
    const done = (err?: unknown): void => {
      clearTimeout(timer);
      client.removeListener('ready', onReady);
      if (err) reject(err);
      else resolve();
    };
    const onReady = (): void => done();
    const timer = setTimeout(() => done(new Error(`not ready within ${ms} ms (status ${client.status})`)), ms);
    client.on('ready', onReady);
    if (client.status === 'wait') client.connect().catch(() => {}); // a lazyConnect client; failures surface as the timeout
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
