import type { SessionModuleOptions } from './contracts/session-options.interface.js';
import { SessionOptionsError } from './core/session-options.resolver.js';

type Env = Record<string, string | undefined>;

/**
 * Session options from environment variables (the names of DESIGN.md / the PHP original).
 * Only variables that are set are applied; invalid values throw at start-up naming the variable.
 * Booleans accept true/false/1/0/yes/no (the PHP original read "false" as true).
 */
export function sessionOptionsFromEnv(env: Env = process.env): SessionModuleOptions {
  const o: SessionModuleOptions = {};
  const driver = str(env, 'SESSION_DRIVER')?.toLowerCase();
  if (driver !== undefined) {
    if (!['file', 'database', 'redis', 'memory'].includes(driver)) throw envError('SESSION_DRIVER', 'file, database, redis or memory', env.SESSION_DRIVER!.trim());
    o.driver = driver as SessionModuleOptions['driver'];
  }
  const filePath = str(env, 'SESSION_FILE_PATH');
  if (filePath !== undefined) o.file = { path: filePath };
  const table = str(env, 'SESSION_TABLE');
  const dbUrl = str(env, 'DATABASE_URL');
  if (table !== undefined || dbUrl !== undefined) o.database = { ...(dbUrl && { url: dbUrl }), ...(table && { table }) };
  const redisUrl = str(env, 'SESSION_REDIS_URL');
  const nodes = str(env, 'SESSION_REDIS_CLUSTER_NODES');
  if (redisUrl !== undefined || nodes !== undefined) {
    o.redis = {};
    if (redisUrl) o.redis.url = redisUrl;
    if (redisUrl && nodes) {
      throw new SessionOptionsError('SESSION_REDIS_URL', 'is not used with SESSION_REDIS_CLUSTER_NODES (a Cluster takes no URL): unset one; give a Cluster\'s password or TLS in redis.options.redisOptions with forRootAsync().');
    }
    if (nodes) o.redis.cluster = clusterNodes(nodes);
  }
  const lifetime = num(env, 'SESSION_LIFETIME');
  if (lifetime !== undefined) o.absoluteTimeout = lifetime;
  const idle = num(env, 'SESSION_IDLE_TIMEOUT');
  if (idle !== undefined) o.idleTimeout = idle;

  const cookie: NonNullable<SessionModuleOptions['cookie']> = {};
  const name = str(env, 'SESSION_COOKIE_NAME');
  if (name !== undefined) cookie.name = name;
  const secure = str(env, 'SESSION_COOKIE_SECURE');
  if (secure !== undefined) cookie.secure = secure.toLowerCase() === 'auto' ? 'auto' : boolValue('SESSION_COOKIE_SECURE', secure);
  const sameSite = str(env, 'SESSION_COOKIE_SAMESITE');
  if (sameSite !== undefined) {
    const v = sameSite.toLowerCase();
    if (v !== 'lax' && v !== 'strict' && v !== 'none') throw envError('SESSION_COOKIE_SAMESITE', 'lax, strict or none', sameSite);
    cookie.sameSite = v;
  }
  const domain = str(env, 'SESSION_COOKIE_DOMAIN');
  if (domain !== undefined) cookie.domain = domain;
  if (Object.keys(cookie).length > 0) o.cookie = cookie;

  const ip = str(env, 'SESSION_IP_POLICY')?.toLowerCase();
  if (ip !== undefined) {
    if (ip !== 'strict' && ip !== 'relaxed') throw envError('SESSION_IP_POLICY', 'strict or relaxed', env.SESSION_IP_POLICY!.trim());
    o.fingerprint = { ip };
  }
  const encrypt = bool(env, 'SESSION_ENCRYPT');
  const keys = str(env, 'SESSION_KEYS');
  // Fail closed: keys without SESSION_ENCRYPT, or SESSION_ENCRYPT with only commas and blanks
  // (`${KEY},${OLD_KEY}` with both unset), would otherwise store sessions unencrypted without a word.
  const keyList = keys === undefined ? [] : keys.split(',').map((k) => k.trim()).filter(Boolean);
  if (encrypt === true) {
    if (keyList.length === 0) throw new SessionOptionsError('SESSION_KEYS', 'SESSION_ENCRYPT is true but SESSION_KEYS holds no key: give one or more comma-separated base64 32-byte keys.');
    o.encryption = { keys: keyList };
  } else if (encrypt === undefined && keys !== undefined) {
    throw new SessionOptionsError('SESSION_ENCRYPT', 'SESSION_KEYS is set but SESSION_ENCRYPT is not: set SESSION_ENCRYPT=true to encrypt sessions, or SESSION_ENCRYPT=false to keep them unencrypted.');
  }
  return o;
}

/** `host:port,host:port` (an IPv6 address in brackets: `[::1]:7000`); a trailing comma is allowed. */
function clusterNodes(text: string): Array<{ host: string; port: number }> {
  const parts = text.split(',').map((n) => n.trim());
  if (parts[parts.length - 1] === '') parts.pop();
  return parts.map((n) => {
    const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:\s[\]]+)):(\d{1,5})$/.exec(n);
    const port = m ? Number(m[3]) : 0;
    if (!m || port < 1 || port > 65535) throw envError('SESSION_REDIS_CLUSTER_NODES', 'comma-separated host:port pairs (IPv6 as [address]:port, ports 1-65535)', text);
    return { host: m[1] ?? m[2], port };
  });
}

function str(env: Env, name: string): string | undefined {
  const v = env[name];
  return v === undefined || v.trim() === '' ? undefined : v.trim();
}

function num(env: Env, name: string): number | undefined {
  const v = str(env, name);
  if (v === undefined) return undefined;
  const n = Number(v);
  // The resolver's limit too (100 years), checked here so that the error names the variable.
  if (!Number.isFinite(n) || n <= 0 || n > 100 * 365 * 24 * 3600) throw envError(name, 'a positive number of seconds, at most 100 years', v);
  return n;
}

function bool(env: Env, name: string): boolean | undefined {
  const v = str(env, name);
  return v === undefined ? undefined : boolValue(name, v);
}

function boolValue(name: string, v: string): boolean {
  const s = v.toLowerCase();
  if (['true', '1', 'yes'].includes(s)) return true;
  if (['false', '0', 'no'].includes(s)) return false;
  throw envError(name, 'true/false/1/0/yes/no', v);
}

function envError(name: string, expected: string, got: string): SessionOptionsError {
  return new SessionOptionsError(name, `expected ${expected}, got ${JSON.stringify(got)}.`);
}
