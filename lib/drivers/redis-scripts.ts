/**
 * Lua sources of the Redis session driver. Each runs atomically on the server, so a lock check and
 * the write it guards can never interleave with another client's commands.
 *
 * Key layout (see docs/drivers/redis.md): every key of one session shares the hash tag `{<id>}`, so
 * the record and its lock always live in one Cluster slot and may appear together in one script:
 *   record  `<prefix>{<id>}`        hash: p = payload, m = meta JSON, e = evictAt (epoch ms), u = userId (absent when none)
 *   lock    `<prefix>{<id>}:lock`   string: the holder's random token, with a PX TTL
 *   index   `<prefix>{u:<userId>}`  sorted set: session IDs of that user, scored by their evictAt
 *
 * Times are the client's epoch milliseconds, passed in ARGV: the record's PX TTL and the index scores
 * are computed from the same clock, so the server clock never has to agree with the application's.
 */
import { createHash } from 'node:crypto';

/** A script and its SHA1, for EVALSHA with an EVAL fallback on NOSCRIPT. */
export interface LuaScript {
  readonly name: string;
  readonly lua: string;
  readonly sha: string;
}

function script(name: string, lua: string): LuaScript {
  return { name, lua, sha: createHash('sha1').update(lua).digest('hex') };
}

/**
 * Adds `id` to the index `key` with score `evictAt`, prunes dead members and makes the index live
 * exactly as long as its longest-lived session. Shared by the write script (standalone) and the
 * index script (Cluster, where the index sits in another slot than the session).
 */
const INDEX_ADD_FN = `
local function index_add(key, id, evict_at, now)
  redis.call('ZADD', key, evict_at, id)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  local top = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
  if top[2] then
    local ms = tonumber(top[2]) - tonumber(now)
    if ms > 0 then redis.call('PEXPIRE', key, string.format('%.0f', ms)) end
  end
end
`;

/**
 * lock (+ read). KEYS: lock, record. ARGV: token, ttlMs, '1' to also return the record.
 * Returns {1, {p, m, e} | nil} when acquired, {0, pttl} when another holder has it: the remaining
 * PTTL lets the waiter sleep until the lock can expire instead of polling blindly.
 */
export const LOCK_SCRIPT = script(
  'lock',
  `
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  if ARGV[3] == '1' then
    return {1, redis.call('HMGET', KEYS[2], 'p', 'm', 'e')}
  end
  return {1}
end
return {0, redis.call('PTTL', KEYS[1])}
`,
);

/**
 * write (+ unlock), fenced. KEYS: record, lock, [new user's index when maintained inline].
 * ARGV: 1 token ('' = unfenced), 2 '1' = release the lock, 3 payload, 4 meta JSON, 5 evictAt,
 * 6 ttlMs, 7 userId, 8 '1' when there is a userId, 9 now, 10 index key prefix (`<prefix>{u:`, or ''
 * when the caller maintains the index itself, as on Cluster), 11 session ID.
 * Returns {0} when the token no longer owns the lock (nothing written), else {1, previous userId | nil}.
 *
 * The previous user's index is named from the stored `u` field, which is why the record keeps it.
 * That key is not in KEYS: allowed on a standalone server (and Sentinel), never used on Cluster.
 */
export const WRITE_SCRIPT = script(
  'write',
  `${INDEX_ADD_FN}
if ARGV[1] ~= '' and redis.call('GET', KEYS[2]) ~= ARGV[1] then
  return {0}
end
local previous = redis.call('HGET', KEYS[1], 'u')
redis.call('DEL', KEYS[1])
if ARGV[8] == '1' then
  redis.call('HSET', KEYS[1], 'p', ARGV[3], 'm', ARGV[4], 'e', ARGV[5], 'u', ARGV[7])
else
  redis.call('HSET', KEYS[1], 'p', ARGV[3], 'm', ARGV[4], 'e', ARGV[5])
end
redis.call('PEXPIRE', KEYS[1], ARGV[6])
if ARGV[2] == '1' then
  redis.call('DEL', KEYS[2])
end
if ARGV[10] ~= '' then
  if previous and (ARGV[8] ~= '1' or previous ~= ARGV[7]) then
    redis.call('ZREM', ARGV[10] .. previous .. '}', ARGV[11])
  end
  if ARGV[8] == '1' then
    index_add(KEYS[3], ARGV[11], ARGV[5], ARGV[9])
  end
end
return {1, previous}
`,
);

/** Compare-and-delete release. KEYS: lock. ARGV: token. Returns 1 when released. */
export const UNLOCK_SCRIPT = script(
  'unlock',
  `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`,
);

/** KEYS: lock. ARGV: token, ttl ms. Extends the lock only for its owner. */
export const EXTEND_SCRIPT = script(
  'extend',
  `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
`,
);

/** Cluster-side index maintenance. KEYS: index. ARGV: session ID, evictAt, now. */
export const INDEX_ADD_SCRIPT = script(
  'index-add',
  `${INDEX_ADD_FN}
index_add(KEYS[1], ARGV[1], ARGV[2], ARGV[3])
return 1
`,
);

/** Live members of a user index, dead ones pruned first. KEYS: index. ARGV: now. */
export const INDEX_MEMBERS_SCRIPT = script(
  'index-members',
  `
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
return redis.call('ZRANGE', KEYS[1], 0, -1)
`,
);

/**
 * Deletes a record only if it still belongs to the user, so a session that moved to another user
 * (or an index entry left behind) is never destroyed by mistake. KEYS: record. ARGV: userId. Returns 1 when deleted.
 */
export const DESTROY_IF_USER_SCRIPT = script(
  'destroy-if-user',
  `
if redis.call('HGET', KEYS[1], 'u') == ARGV[1] then
  redis.call('DEL', KEYS[2])
  return redis.call('DEL', KEYS[1])
end
return 0
`,
);

export const ALL_SCRIPTS: readonly LuaScript[] = [LOCK_SCRIPT, WRITE_SCRIPT, UNLOCK_SCRIPT, EXTEND_SCRIPT, INDEX_ADD_SCRIPT, INDEX_MEMBERS_SCRIPT, DESTROY_IF_USER_SCRIPT];
