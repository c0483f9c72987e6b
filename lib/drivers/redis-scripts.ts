/**
 * Lua sources of the Redis session driver. Only what must be atomic on the server is a script:
 * the fenced write (check the lock token, then write) and the compare-and-delete / compare-and-extend
 * of a lock. Taking a lock and reading the record are plain commands (`SET NX PX` + `GET`, sent in
 * one write): a Lua call costs the server several times more than those commands.
 *
 * Key layout (see docs/drivers/redis.md): every key of one session shares the hash tag `{<id>}`, so
 * the record and its lock always live in one Cluster slot and may appear together in one script:
 *   record  `<prefix>{<id>}`        string: `<evictAt>\n<meta JSON>\n<payload>` (see encodeRecord), PX TTL
 *   lock    `<prefix>{<id>}:lock`   string: the holder's token, with a PX TTL
 *   index   `<prefix>{u:<userId>}`  sorted set: session IDs of that user, scored by their evictAt
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
 * Fenced write (+ unlock). KEYS: record, lock. ARGV: token, value, ttlMs, '1' = release the lock.
 * Returns 0 when the token no longer owns the lock (nothing written), else 1.
 */
export const WRITE_SCRIPT = script(
  'write',
  `
if redis.call('GET', KEYS[2]) ~= ARGV[1] then
  return 0
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
if ARGV[4] == '1' then
  redis.call('DEL', KEYS[2])
end
return 1
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

/** Live members of a user index, dead ones pruned first. KEYS: index. ARGV: now. */
export const INDEX_MEMBERS_SCRIPT = script(
  'index-members',
  `
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
return redis.call('ZRANGE', KEYS[1], 0, -1)
`,
);

/**
 * Deletes a record (and its lock) only if it still belongs to the user, so a session that moved to
 * another user (or an index entry left behind) is never destroyed by mistake. The owner is the
 * `userId` of the meta JSON, the second line of the record; a key of another type (an older
 * layout, another program) is not ours and is left alone. KEYS: record, lock. ARGV: userId.
 * Returns 1 when deleted.
 */
export const DESTROY_IF_USER_SCRIPT = script(
  'destroy-if-user',
  `
if redis.call('TYPE', KEYS[1]).ok ~= 'string' then return 0 end
local v = redis.call('GET', KEYS[1])
if not v then return 0 end
local a = string.find(v, '\\n', 1, true)
if not a then return 0 end
local b = string.find(v, '\\n', a + 1, true)
if not b then return 0 end
local ok, meta = pcall(cjson.decode, string.sub(v, a + 1, b - 1))
if ok and type(meta) == 'table' and meta.userId == ARGV[1] then
  redis.call('DEL', KEYS[2])
  return redis.call('DEL', KEYS[1])
end
return 0
`,
);

export const ALL_SCRIPTS: readonly LuaScript[] = [WRITE_SCRIPT, UNLOCK_SCRIPT, EXTEND_SCRIPT, INDEX_MEMBERS_SCRIPT, DESTROY_IF_USER_SCRIPT];
