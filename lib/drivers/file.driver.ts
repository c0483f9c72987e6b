import { createHash, randomBytes } from 'node:crypto';
import { constants as fsConstants, type Stats } from 'node:fs';
import { access, lstat, mkdir, open, opendir, readFile, readdir, readlink, rename, rm, rmdir, stat, symlink, unlink, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { isValidSessionId } from '../contracts/session-id.js';
import { SessionException, SessionLockException, SessionStoreUnavailableException } from '../contracts/session-exception.js';
import type { LockOptions, SessionDriver } from '../contracts/session-driver.interface.js';
import type { FileDriverOptions } from '../contracts/session-options.interface.js';
import type { SessionMeta, SessionRecord, SessionSummary } from '../contracts/session-record.interface.js';

/** Version of the on-disk envelope; a file with a higher one was written by a newer release. */
const FORMAT_VERSION = 1;
const DEFAULT_PATH = './storage/sessions';
const DIR_MODE = 0o700;
const FILE_MODE = 0o600;

const RECORD_FILE = /^([0-9a-f]{64})\.json$/;
const LOCK_DIR = /^([0-9a-f]{64})\.lock$/;
/** Lock tokens are `<expiresAt ms>.<22 base64url chars>`; nothing else may become part of a path. */
const TOKEN = /^(\d{1,16})\.([A-Za-z0-9_-]{22})$/;
const GEN_PREFIX = 'gen.';
const HOLD_PREFIX = 'hold.';
const GONE_PREFIX = 'gone.';
const TEMP_PREFIX = '.tmp.';
const ROOT_GONE_PREFIX = '.gone.';

const BACKOFF_MIN_MS = 5;
const BACKOFF_MAX_MS = 50;
/** Directory entries handled concurrently by scans (gc, listByUser, destroyByUser): bounds memory and open files. */
const SCAN_BATCH = 64;
/**
 * Leftovers of a crashed process (temp files, half-removed directories, a waiter's unused
 * hold directory) are removed once this old. Far above any real write or acquisition time, so
 * a live process never sees its own file vanish.
 */
const STALE_LEFTOVER_MS = 15 * 60_000;

/** Lease gc takes on a session while deleting it: long enough to cover one read and one unlink. */
const GC_LOCK_TTL_MS = 30_000;

const LOCK_LOST =
  'The session lock expired or was taken over before the write; the change was not saved. Raise lock.ttl if requests run this long.';

/** On-disk form of one session: `<sha256(id)>.json`. */
interface Envelope {
  v: number;
  id: string;
  evictAt: number;
  meta: SessionMeta;
  payload: string;
}

type Decoded = { kind: 'ok'; id: string; record: SessionRecord } | { kind: 'garbage' } | { kind: 'future'; version: number };

/** A lock() call of this process waiting for a session's lock. */
interface Waiter {
  /** Set when woken while not sleeping, so that the wake-up is not lost. */
  woken: boolean;
  /** Ends the current sleep early. */
  resume: (() => void) | null;
}

/** What a lock directory says about the current lease. */
interface LockView {
  /** Highest generation present (0 when none). */
  maxGen: number;
  free: boolean;
  /** When the current lease ends (only when not free). */
  expiresAt: number;
}

/**
 * Sessions as files: one JSON file per session under `options.path` (default
 * `./storage/sessions`), written atomically (temp file + rename), mode 0600 in a 0700 directory.
 * File names are the SHA-256 of the session ID, so no raw ID appears in a path, a directory
 * listing or an error message.
 *
 * The lock is a cross-process lease that needs no daemon and survives a crashed holder; writes
 * are fenced by revocation (a holder's temp file lives in a directory the next holder renames
 * away), so a holder that lost its lock can never overwrite a newer holder's write, whatever
 * pauses or clock jumps happen. docs/drivers/file.md gives the protocol and the argument.
 * Local file systems only (not NFS or other network file systems).
 */
export class FileDriver implements SessionDriver {
  /** Absolute directory holding the sessions. */
  readonly root: string;
  private closed = false;
  /**
   * Lock waiters of this process, by file key, in arrival order. Only the first one polls the
   * file system; the others wait for their turn, so a release hands the lock on at once instead
   * of making every waiter of the process race for it.
   */
  private readonly queues = new Map<string, Waiter[]>();

  constructor(options: FileDriverOptions) {
    const path = options?.path ?? DEFAULT_PATH;
    if (typeof path !== 'string' || path.trim() === '') {
      throw new SessionException('file.path must be a non-empty directory path (SESSION_FILE_PATH).');
    }
    this.root = resolve(path);
  }

  /** Creates the directory (0700, with missing parents) and checks that this process can write to it. */
  async open(): Promise<void> {
    this.closed = false;
    try {
      await mkdir(this.root, { recursive: true, mode: DIR_MODE });
      const info = await stat(this.root);
      if (!info.isDirectory()) throw Object.assign(new Error('not a directory'), { code: 'ENOTDIR' });
      await access(this.root, fsConstants.R_OK | fsConstants.W_OK | fsConstants.X_OK);
    } catch (err) {
      throw new SessionException(
        `The file session driver cannot use ${this.root} (${codeOf(err) ?? 'error'}): point file.path (SESSION_FILE_PATH) at a directory this process can create and write.`,
        undefined,
        { cause: err },
      );
    }
  }

  /** Stops lock waits of this process; files stay as they are. */
  async close(): Promise<void> {
    this.closed = true;
    for (const queue of this.queues.values()) for (const waiter of queue) wakeWaiter(waiter);
  }

  /** The record, `null` when absent, past `evictAt`, or unreadable as a session file (see docs/drivers/file.md). */
  async read(id: string): Promise<SessionRecord | null> {
    const key = keyOf(id);
    let text: string;
    try {
      text = await readFile(this.recordPath(key), 'utf8');
    } catch (err) {
      if (codeOf(err) === 'ENOENT') return null;
      throw this.storeError('read a session', err);
    }
    const decoded = this.decode(text, key);
    if (decoded.kind === 'future') throw this.futureError(decoded.version);
    if (decoded.kind === 'garbage') return null;
    return decoded.record.evictAt <= Date.now() ? null : decoded.record;
  }

  /** Replaces the record atomically; with `lockToken`, only while that token still owns the lock. */
  async write(id: string, record: SessionRecord, lockToken?: string): Promise<void> {
    const key = keyOf(id);
    const body = encode(id, record);
    if (lockToken === undefined) {
      await this.commit(join(this.root, TEMP_PREFIX + randomName()), body, key, false);
      return;
    }
    const lease = parseToken(lockToken);
    if (lease === null || lease.expiresAt <= Date.now()) throw new SessionLockException(LOCK_LOST);
    // The temp file lives in the holder's own directory: once a successor renames that directory
    // away, neither this create nor the rename below can succeed, however long we were paused.
    const temp = join(this.lockDir(key), HOLD_PREFIX + lockToken, `w.${randomName()}.tmp`);
    await this.commit(temp, body, key, true, lease.expiresAt);
  }

  /**
   * Deletes the record and voids any lock on it: the holder's fenced write then fails, so a
   * request in flight cannot bring a destroyed session back. Absent is not an error.
   */
  async destroy(id: string): Promise<void> {
    const key = keyOf(id);
    await this.guard('delete a session', () =>
      this.destroyVoiding(key, async () => {
        try {
          await unlink(this.recordPath(key));
          return true;
        } catch (err) {
          if (codeOf(err) === 'ENOENT') return false;
          throw err;
        }
      }),
    );
  }

  /**
   * Deletes expired and unreadable session files (a directory scan, `SCAN_BATCH` entries at a
   * time) and resolves to how many; also removes idle lock directories of dead sessions and
   * leftovers of crashed processes. Entries it cannot handle are skipped and reported at the end.
   */
  async gc(): Promise<number> {
    let removed = 0;
    let failures = 0;
    let firstError: unknown = null;
    const now = Date.now();
    await this.scan(async (name) => {
      try {
        const n = await this.collect(name, now);
        removed += n;
      } catch (err) {
        if (codeOf(err) === 'ENOENT') return;
        failures++;
        firstError ??= err;
      }
    });
    if (failures > 0) {
      throw new SessionStoreUnavailableException(
        `Session gc removed ${removed} session file(s) but could not handle ${failures} entr${failures === 1 ? 'y' : 'ies'} in ${this.root} (first: ${codeOf(firstError) ?? describe(firstError)}); check the directory's ownership and permissions.`,
        { cause: firstError },
      );
    }
    return removed;
  }

  /** Takes the session's lock, waiting up to `waitMs`; resolves to the owner's token. */
  async lock(id: string, options: LockOptions): Promise<string> {
    return this.acquire(keyOf(id), options);
  }

  /** Releases the lock if `token` still owns it; a stale or foreign token changes nothing. */
  async unlock(id: string, token: string): Promise<void> {
    await this.release(keyOf(id), token);
  }

  /** Live sessions of `userId`: a scan of the whole directory (see docs/drivers/file.md for the cost). */
  async listByUser(userId: string): Promise<SessionSummary[]> {
    const now = Date.now();
    const out: SessionSummary[] = [];
    await this.scanRecords(async (_key, id, record) => {
      if (record.meta.userId === userId && record.evictAt > now) out.push({ id, meta: record.meta });
    });
    return out;
  }

  /** Every readable session file in the directory, decoded: the shared walk of listByUser/destroyByUser. */
  private async scanRecords(visit: (key: string, id: string, record: SessionRecord) => Promise<void>): Promise<void> {
    await this.scan(async (name) => {
      const m = RECORD_FILE.exec(name);
      if (!m) return;
      const loaded = await this.load(m[1]);
      if (loaded?.decoded.kind !== 'ok') return;
      await visit(m[1], loaded.decoded.id, loaded.decoded.record);
    });
  }

  /** Deletes every session file of `userId` except `exceptId` (a directory scan); resolves to how many. */
  async destroyByUser(userId: string, exceptId?: string): Promise<number> {
    let removed = 0;
    await this.scanRecords(async (key, id, record) => {
      if (record.meta.userId !== userId || id === exceptId) return;
      const deleted = await this.destroyVoiding(key, async () => {
        // Only the file we matched: a session rewritten for another user meanwhile stays.
        const again = await this.load(key);
        if (again?.decoded.kind !== 'ok' || again.decoded.record.meta.userId !== userId) return false;
        return this.unlinkIfSame(this.recordPath(key), again.stats);
      });
      if (deleted) removed++;
    });
    return removed;
  }

  /**
   * `destroy` semantics around `remove`: revoke every holder, delete, revoke again. The first
   * sweep stops the current holder from committing; the second catches a request that took the
   * lock (and read the record) between the sweep and the delete. A request locking after that
   * reads "absent". Then the lock directory, now of a dead ID, is removed.
   */
  private async destroyVoiding(key: string, remove: () => Promise<boolean>): Promise<boolean> {
    const dir = this.lockDir(key);
    await this.revokeAll(dir);
    const removed = await remove();
    await this.revokeAll(dir);
    if (!(await exists(this.recordPath(key)))) await this.removeIdleLockDir(key, Date.now()).catch(() => false);
    return removed;
  }

  // ---- records ---------------------------------------------------------------------------

  private recordPath(key: string): string {
    return join(this.root, `${key}.json`);
  }

  private lockDir(key: string): string {
    return join(this.root, `${key}.lock`);
  }

  /** Writes `body` to `temp` (0600, exclusive) and renames it over the record. */
  private async commit(temp: string, body: string, key: string, fenced: boolean, leaseEnd = Infinity): Promise<void> {
    try {
      await writeFile(temp, body, { mode: FILE_MODE, flag: 'wx' });
    } catch (err) {
      if (codeOf(err) !== 'ENOENT') throw this.storeError('write a session', err);
      if (fenced) throw new SessionLockException(LOCK_LOST);
      // The directory was removed after open() (a tmp cleaner, an operator): recreate it once.
      await this.ensureRoot();
      try {
        await writeFile(temp, body, { mode: FILE_MODE, flag: 'wx' });
      } catch (again) {
        throw this.storeError('write a session', again);
      }
    }
    try {
      if (Date.now() >= leaseEnd) throw new SessionLockException(LOCK_LOST);
      await rename(temp, this.recordPath(key));
    } catch (err) {
      await unlink(temp).catch(() => undefined);
      if (err instanceof SessionException) throw err;
      if (fenced && codeOf(err) === 'ENOENT') throw new SessionLockException(LOCK_LOST);
      throw this.storeError('write a session', err);
    }
  }

  private decode(text: string, key: string): Decoded {
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch {
      return { kind: 'garbage' };
    }
    if (!isObject(raw)) return { kind: 'garbage' };
    if (typeof raw.v === 'number' && Number.isInteger(raw.v) && raw.v > FORMAT_VERSION) return { kind: 'future', version: raw.v };
    const env = raw as Partial<Envelope>;
    if (env.v !== FORMAT_VERSION || !isValidSessionId(env.id) || keyOf(env.id) !== key) return { kind: 'garbage' };
    if (typeof env.payload !== 'string' || !isFiniteNumber(env.evictAt)) return { kind: 'garbage' };
    const meta = readMeta(env.meta);
    if (meta === null) return { kind: 'garbage' };
    return { kind: 'ok', id: env.id, record: { payload: env.payload, meta, evictAt: env.evictAt } };
  }

  /** Reads a record file with the identity of what was read, so a later delete can check it is still that file. */
  private async load(key: string): Promise<{ decoded: Decoded; stats: Stats } | null> {
    let handle;
    try {
      handle = await open(this.recordPath(key), 'r');
    } catch (err) {
      if (codeOf(err) === 'ENOENT') return null;
      throw err;
    }
    try {
      const stats = await handle.stat();
      const text = await handle.readFile('utf8');
      return { decoded: this.decode(text, key), stats };
    } finally {
      await handle.close();
    }
  }

  /**
   * Unlinks `path` only if it is still the file `seen` describes: a record rewritten since we
   * read it (a new inode, by rename) is left alone.
   */
  private async unlinkIfSame(path: string, seen: Stats): Promise<boolean> {
    try {
      const now = await lstat(path);
      if (now.ino !== seen.ino || now.dev !== seen.dev) return false;
      await unlink(path);
      return true;
    } catch (err) {
      if (codeOf(err) === 'ENOENT') return false;
      throw err;
    }
  }

  // ---- locks -----------------------------------------------------------------------------

  /** `lock()` by file key (gc locks files whose ID it has not read). */
  private async acquire(key: string, { waitMs, ttlMs }: LockOptions): Promise<string> {
    if (!Number.isFinite(ttlMs) || ttlMs <= 0) throw new SessionException('lock ttl must be a positive number of milliseconds.');
    const dir = this.lockDir(key);
    const deadline = Date.now() + Math.max(0, Number.isFinite(waitMs) ? waitMs : 0);
    const me: Waiter = { woken: false, resume: null };
    let queue = this.queues.get(key);
    if (!queue) this.queues.set(key, (queue = []));
    queue.push(me);
    try {
      let backoff = BACKOFF_MIN_MS;
      for (;;) {
        if (this.closed) throw new SessionException('The file session driver is closed; no lock can be taken.');
        if (queue[0] !== me) {
          // Another request of this process is ahead: wait for our turn (or the deadline).
          const left = deadline - Date.now();
          if (left <= 0) throw new SessionLockException();
          await sleepWaiter(me, left);
          continue;
        }
        const view = await this.guard('take a session lock', () => this.inspect(dir));
        if (view.free) {
          const token = await this.guard('take a session lock', () => this.tryAcquire(dir, view.maxGen, ttlMs));
          if (token !== null) return token;
        }
        const now = Date.now();
        if (now >= deadline) throw new SessionLockException();
        let pause = Math.min(backoff, deadline - now);
        // Wake right when a dead holder's lease runs out rather than up to one backoff later.
        if (!view.free) pause = Math.min(pause, Math.max(1, view.expiresAt - now + 1));
        // Jitter keeps processes that collided once from colliding again in lockstep.
        await sleepWaiter(me, Math.max(1, Math.round(pause * (0.8 + Math.random() * 0.4))));
        backoff = Math.min(BACKOFF_MAX_MS, Math.ceil(backoff * 1.5));
      }
    } finally {
      const wasFirst = queue[0] === me;
      queue.splice(queue.indexOf(me), 1);
      if (queue.length === 0) {
        if (this.queues.get(key) === queue) this.queues.delete(key);
      } else if (wasFirst) {
        // The next one in line starts polling now (it will usually find the lock we just took held).
        wakeWaiter(queue[0]);
      }
    }
  }

  /** `unlock()` by file key. */
  private async release(key: string, token: string): Promise<void> {
    if (typeof token !== 'string' || parseToken(token) === null) return;
    const dir = this.lockDir(key);
    // Renaming our own hold directory is the release; it fails (ENOENT) exactly when a
    // successor already revoked us, so a non-owner can never release someone else's lock.
    const released = await this.guard('release a session lock', () => this.revoke(dir, HOLD_PREFIX + token));
    if (!released) return;
    const next = this.queues.get(key)?.[0];
    if (next) wakeWaiter(next);
    // A lock on an ID with no record (an unknown or dead cookie) would otherwise leave a
    // directory behind per request until the next gc.
    try {
      if (!(await exists(this.recordPath(key)))) await this.removeIdleLockDir(key, Date.now());
    } catch {
      // Best effort: gc removes it later.
    }
  }

  /**
   * Reads the lease: the highest `gen.N` names the current token; the lease is held while that
   * token is unexpired and its `hold.<token>` directory exists.
   */
  private async inspect(dir: string): Promise<LockView> {
    for (let attempt = 0; ; attempt++) {
      let names: string[];
      try {
        names = await readdir(dir);
      } catch (err) {
        if (codeOf(err) === 'ENOENT') return { maxGen: 0, free: true, expiresAt: 0 };
        throw err;
      }
      const maxGen = highestGen(names);
      if (maxGen === 0) return { maxGen, free: true, expiresAt: 0 };
      let token: string | null;
      try {
        token = await readGen(dir, maxGen);
      } catch (err) {
        // A newer generation's sweep removed it between our listing and our read: list again.
        if (codeOf(err) === 'ENOENT' && attempt < 3) continue;
        throw err;
      }
      const lease = token === null ? null : parseToken(token);
      if (lease === null || lease.expiresAt <= Date.now()) return { maxGen, free: true, expiresAt: 0 };
      if (!(await exists(join(dir, HOLD_PREFIX + token!)))) return { maxGen, free: true, expiresAt: 0 };
      return { maxGen, free: false, expiresAt: lease.expiresAt };
    }
  }

  /**
   * One attempt to become generation `seenGen + 1`: create our hold directory, publish
   * `gen.<N>` as a symlink to it (symlink() is atomic, sets the content with the name, and
   * fails if the name exists, so one contender wins each generation), check nobody is ahead
   * of us, then revoke every other hold directory. Null if we lost.
   */
  private async tryAcquire(dir: string, seenGen: number, ttlMs: number): Promise<string | null> {
    const token = `${Date.now() + ttlMs}.${randomBytes(16).toString('base64url')}`;
    const gen = seenGen + 1;
    const holdName = HOLD_PREFIX + token;
    const hold = join(dir, holdName);
    try {
      await mkdir(hold, { mode: DIR_MODE });
    } catch (err) {
      if (codeOf(err) !== 'ENOENT') throw err;
      // First lock on this ID, or its directory was just removed as idle: create it and go on.
      await this.ensureLockDir(dir);
      try {
        await mkdir(hold, { mode: DIR_MODE });
      } catch (again) {
        if (codeOf(again) === 'ENOENT') return null;
        throw again;
      }
    }
    try {
      await symlink(holdName, join(dir, GEN_PREFIX + gen));
    } catch (err) {
      await this.revoke(dir, holdName).catch(() => undefined);
      const code = codeOf(err);
      // EEXIST: another contender won this generation. ENOENT: our hold directory was swept
      // or the lock directory removed while we were starting; both mean "try again".
      if (code === 'EEXIST' || code === 'ENOENT') return null;
      throw err;
    }

    let names: string[];
    try {
      names = await readdir(dir);
    } catch (err) {
      if (codeOf(err) === 'ENOENT') return null;
      throw err;
    }
    // Someone already holds a later generation (ours was a stale number whose file had been
    // cleaned up), or swept us: step back before touching anything.
    if (highestGen(names) !== gen || !names.includes(holdName)) {
      await this.revoke(dir, holdName).catch(() => undefined);
      return null;
    }
    // The sweep is what fences: after it, no earlier holder can create or rename a temp file,
    // so every write of theirs that succeeded happened before we return and read the record.
    for (const name of names) {
      if (name.startsWith(HOLD_PREFIX) && name !== holdName) {
        await this.revoke(dir, name);
      } else if (name.startsWith(GEN_PREFIX) && genOf(name) < gen) {
        await unlink(join(dir, name)).catch(() => undefined);
      } else if (name.startsWith(GONE_PREFIX)) {
        await rm(join(dir, name), { recursive: true, force: true }).catch(() => undefined);
      }
    }
    return token;
  }

  /** Revokes every hold directory of a lock: holders and contenders alike; the lease becomes free. */
  private async revokeAll(dir: string): Promise<void> {
    let names: string[];
    try {
      names = await readdir(dir);
    } catch (err) {
      if (codeOf(err) === 'ENOENT') return;
      throw err;
    }
    for (const name of names) if (name.startsWith(HOLD_PREFIX)) await this.revoke(dir, name);
  }

  /** Atomically takes `holdName` out of play (rename), then deletes it. False if it was already gone. */
  private async revoke(dir: string, holdName: string): Promise<boolean> {
    const gone = join(dir, GONE_PREFIX + randomName());
    try {
      await rename(join(dir, holdName), gone);
    } catch (err) {
      if (codeOf(err) === 'ENOENT') return false;
      throw err;
    }
    await removeTree(gone);
    return true;
  }

  /**
   * Removes the lock directory of `key` when nobody holds or is acquiring its lock. Only called
   * when the session has no record: a contender we race with is locking a dead ID, and at worst
   * retries (see docs/drivers/file.md).
   */
  private async removeIdleLockDir(key: string, now: number): Promise<boolean> {
    const dir = this.lockDir(key);
    let names: string[];
    try {
      names = await readdir(dir);
    } catch (err) {
      if (codeOf(err) === 'ENOENT') return false;
      throw err;
    }
    const maxGen = highestGen(names);
    let current: string | null = null;
    if (maxGen > 0) {
      try {
        current = await readGen(dir, maxGen);
      } catch (err) {
        if (codeOf(err) === 'ENOENT') return false; // in flux: someone is acquiring
        throw err;
      }
      const lease = current === null ? null : parseToken(current);
      if (lease !== null && lease.expiresAt > now && names.includes(HOLD_PREFIX + current)) return false;
    }
    for (const name of names) {
      if (!name.startsWith(HOLD_PREFIX) || name === HOLD_PREFIX + current) continue;
      // Another hold directory is a contender between its mkdir and its symlink, unless it is old enough to be a crash's leftover.
      const info = await lstat(join(dir, name)).catch(() => null);
      if (info !== null && now - info.mtimeMs < STALE_LEFTOVER_MS) return false;
    }
    const gone = join(this.root, ROOT_GONE_PREFIX + randomName());
    try {
      await rename(dir, gone);
    } catch (err) {
      if (codeOf(err) === 'ENOENT') return false;
      throw err;
    }
    await rm(gone, { recursive: true, force: true }).catch(() => undefined);
    return true;
  }

  private async ensureLockDir(dir: string): Promise<void> {
    try {
      await mkdir(dir, { mode: DIR_MODE });
    } catch (err) {
      const code = codeOf(err);
      if (code === 'EEXIST') return;
      if (code !== 'ENOENT') throw err;
      await this.ensureRoot();
      await mkdir(dir, { mode: DIR_MODE }).catch((e: unknown) => {
        if (codeOf(e) !== 'EEXIST') throw e;
      });
    }
  }

  /** Recreates the directory if something (a tmp cleaner, an operator) removed it after open(). */
  private async ensureRoot(): Promise<void> {
    try {
      await mkdir(this.root, { recursive: true, mode: DIR_MODE });
    } catch (err) {
      throw this.storeError('create the session directory', err);
    }
  }

  // ---- gc and scans ----------------------------------------------------------------------

  /** Visits every entry of the directory, `SCAN_BATCH` at a time, without listing it whole in memory. */
  private async scan(visit: (name: string) => Promise<void>): Promise<void> {
    let dirHandle;
    try {
      dirHandle = await opendir(this.root, { bufferSize: SCAN_BATCH });
    } catch (err) {
      if (codeOf(err) === 'ENOENT') return;
      throw this.storeError('list the session directory', err);
    }
    try {
      let batch: string[] = [];
      for await (const entry of dirHandle) {
        batch.push(entry.name);
        if (batch.length >= SCAN_BATCH) {
          await Promise.all(batch.map(visit));
          batch = [];
        }
      }
      if (batch.length > 0) await Promise.all(batch.map(visit));
    } catch (err) {
      if (err instanceof SessionException) throw err;
      throw this.storeError('scan the session directory', err);
    }
  }

  /** gc of one directory entry; resolves to the number of session files it deleted (0 or 1). */
  private async collect(name: string, now: number): Promise<number> {
    const record = RECORD_FILE.exec(name);
    if (record) {
      const key = record[1];
      if (!isCollectable(await this.load(key), now)) return 0;
      // Under the session's lock: a request that read the record before it expired holds the
      // lock and may still refresh it; we skip it (the next gc sees it) rather than race its write.
      let token: string;
      try {
        token = await this.acquire(key, { waitMs: 0, ttlMs: GC_LOCK_TTL_MS });
      } catch (err) {
        if (err instanceof SessionLockException) return 0;
        throw err;
      }
      try {
        const loaded = await this.load(key);
        if (loaded === null || !isCollectable(loaded, now)) return 0;
        return (await this.unlinkIfSame(this.recordPath(key), loaded.stats)) ? 1 : 0;
      } finally {
        // With the record gone, releasing also removes the lock directory.
        await this.release(key, token);
      }
    }
    const lock = LOCK_DIR.exec(name);
    if (lock) {
      if (!(await exists(this.recordPath(lock[1])))) await this.removeIdleLockDir(lock[1], now);
      return 0;
    }
    if (name.startsWith(TEMP_PREFIX) || name.startsWith(ROOT_GONE_PREFIX)) {
      const path = join(this.root, name);
      const info = await lstat(path);
      if (now - info.mtimeMs >= STALE_LEFTOVER_MS) await rm(path, { recursive: true, force: true });
    }
    return 0;
  }

  // ---- errors ----------------------------------------------------------------------------

  /** Runs a lock step, turning file-system failures into a 503 with a usable message. */
  private async guard<T>(op: string, step: () => Promise<T>): Promise<T> {
    try {
      return await step();
    } catch (err) {
      if (err instanceof SessionException) throw err;
      throw this.storeError(op, err);
    }
  }

  /** File names hold only hashes of IDs, so the cause (which names a path) never reveals a session ID. */
  private storeError(op: string, err: unknown): SessionException {
    if (err instanceof SessionException) return err;
    return new SessionStoreUnavailableException(
      `The file session store could not ${op} (${codeOf(err) ?? describe(err)}); check that ${this.root} exists and is writable by this process.`,
      { cause: err },
    );
  }

  private futureError(version: number): SessionException {
    return new SessionException(
      `A session file in ${this.root} uses storage format v${version}, newer than this release understands (v${FORMAT_VERSION}); run the same version of @monkeyslegion/nestjs-session on every instance sharing the directory.`,
    );
  }
}

/** Sleeps up to `ms`, or less if woken (also by a wake-up that came while it was busy). */
function sleepWaiter(waiter: Waiter, ms: number): Promise<void> {
  if (waiter.woken) {
    waiter.woken = false;
    return Promise.resolve();
  }
  return new Promise((resolveSleep) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      waiter.resume = null;
      resolveSleep();
    }
    waiter.resume = done;
  });
}

function wakeWaiter(waiter: Waiter): void {
  if (waiter.resume) waiter.resume();
  else waiter.woken = true;
}

/** Expired or unreadable as a session (a file of a newer format is never collected). */
function isCollectable(loaded: { decoded: Decoded } | null, now: number): boolean {
  if (loaded === null) return false;
  const { decoded } = loaded;
  return decoded.kind === 'garbage' || (decoded.kind === 'ok' && decoded.record.evictAt <= now);
}

/** The file key of a session: SHA-256 of the validated ID, so that nothing client-supplied reaches a path. */
function keyOf(id: string): string {
  if (!isValidSessionId(id)) throw new SessionException('Refusing a malformed session ID before it reaches storage.');
  return createHash('sha256').update(id).digest('hex');
}

function encode(id: string, record: SessionRecord): string {
  if (!isObject(record) || typeof record.payload !== 'string' || !isFiniteNumber(record.evictAt) || readMeta(record.meta) === null) {
    throw new SessionException('Refusing to store a malformed session record (payload must be a string, evictAt and meta times finite numbers).');
  }
  const envelope: Envelope = { v: FORMAT_VERSION, id, evictAt: record.evictAt, meta: readMeta(record.meta)!, payload: record.payload };
  return JSON.stringify(envelope);
}

/** A copy of exactly the `SessionMeta` fields, or null if any has the wrong type. */
function readMeta(value: unknown): SessionMeta | null {
  if (!isObject(value)) return null;
  const { createdAt, lastActivity, expiresAt, userId, ipAddress, userAgent, csrfToken } = value;
  if (!isFiniteNumber(createdAt) || !isFiniteNumber(lastActivity) || !isFiniteNumber(expiresAt)) return null;
  if (![userId, ipAddress, userAgent, csrfToken].every((v) => v === null || typeof v === 'string')) return null;
  return {
    createdAt,
    lastActivity,
    expiresAt,
    userId: userId as string | null,
    ipAddress: ipAddress as string | null,
    userAgent: userAgent as string | null,
    csrfToken: csrfToken as string | null,
  };
}

function parseToken(token: string): { expiresAt: number } | null {
  const m = TOKEN.exec(token);
  return m ? { expiresAt: Number(m[1]) } : null;
}

/** The token a generation names (its symlink's target is `hold.<token>`), or null if it is not one of ours. */
async function readGen(dir: string, gen: number): Promise<string | null> {
  let target: string;
  try {
    target = await readlink(join(dir, GEN_PREFIX + gen));
  } catch (err) {
    if (codeOf(err) === 'EINVAL') return null; // not a symlink
    throw err;
  }
  return target.startsWith(HOLD_PREFIX) ? target.slice(HOLD_PREFIX.length) : null;
}

/** A released hold directory is normally empty: rmdir is one call where rm({ recursive }) is several. */
async function removeTree(path: string): Promise<void> {
  try {
    await rmdir(path);
  } catch (err) {
    if (codeOf(err) === 'ENOENT') return;
    await rm(path, { recursive: true, force: true }).catch(() => undefined);
  }
}

function genOf(name: string): number {
  const n = Number(name.slice(GEN_PREFIX.length));
  return Number.isSafeInteger(n) && n > 0 ? n : 0;
}

function highestGen(names: string[]): number {
  let max = 0;
  for (const name of names) if (name.startsWith(GEN_PREFIX)) max = Math.max(max, genOf(name));
  return max;
}

async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch (err) {
    if (codeOf(err) === 'ENOENT') return false;
    throw err;
  }
}

function randomName(): string {
  return randomBytes(12).toString('base64url');
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isFiniteNumber(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value);
}

function codeOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

function describe(err: unknown): string {
  return err instanceof Error ? err.name : String(err);
}
