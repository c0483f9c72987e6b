import { createHash, randomBytes } from 'node:crypto';
import { close as closeCb, fstat as fstatCb, fstatSync, constants as fsConstants, ftruncate as ftruncateCb, link as linkCb, open as openCb, read as readCb, rename as renameCb, unlink as unlinkCb, write as writeCb, type Stats } from 'node:fs';
import { access, lstat, mkdir, open, opendir, readdir, rename, rm, rmdir, stat, unlink, type FileHandle } from 'node:fs/promises';
import { join, resolve, sep } from 'node:path';
import { crc32 } from 'node:zlib';
import { isValidSessionId } from '../contracts/session-id.js';
import { SessionException, SessionLockException, SessionStoreUnavailableException } from '../contracts/session-exception.js';
import type { LockOptions, SessionDriver } from '../contracts/session-driver.interface.js';
import type { FileDriverOptions } from '../contracts/session-options.interface.js';
import type { SessionMeta, SessionRecord, SessionSummary } from '../contracts/session-record.interface.js';

/**
 * Version of the on-disk envelope; a file with a higher one was written by a newer release.
 * v2 added the checksum `c`; v1 files (no checksum) are still read.
 */
const FORMAT_VERSION = 2;
/** Envelopes end with `,"c":"<crc32 of everything before the 8 hex digits>"}`. */
const SEAL_HEAD = ',"c":"';
const SEAL_LENGTH = SEAL_HEAD.length + 8 + 2;
/**
 * An unlocked read that found a file being rewritten (its checksum fails) or one that stopped
 * being the record while it read tries again, up to this often (pausing 1, 2, … ms between
 * tries); then it reads once more under the session's lock, where nothing can change the file.
 */
const UNLOCKED_READ_ATTEMPTS = 5;
/** The lock an unlocked read falls back to: how long it waits for it, and the lease it takes. */
const SETTLE_LOCK: LockOptions = { waitMs: 2_000, ttlMs: 5_000 };
const DEFAULT_PATH = './storage/sessions';
const DIR_MODE = 0o700;
const FILE_MODE = 0o600;

const RECORD_FILE = /^([0-9a-f]{64})\.json$/;
const LEASE_DIR = /^([0-9a-f]{64})\.lease$/;
/** Lock directories of releases before the single-rename lease; only removed (by gc) once idle. */
const LEGACY_LOCK_DIR = /^([0-9a-f]{64})\.lock$/;
/** Lock tokens are `<expiresAt ms>.<22 base64url chars>`; nothing else may become part of a path. */
const TOKEN = /^(\d{1,16})\.([A-Za-z0-9_-]{22})$/;
/**
 * The one lease directory inside `<key>.lease/` is named `free.<unique name>` when released and
 * `held.<token>` when held. Every release picks a new free name, so a process that remembers the
 * name it released to knows, when renaming exactly that name succeeds, that nobody locked the
 * session since (see `Recent`). A plain `free` (earlier builds) is still taken.
 */
const FREE = 'free';
const FREE_PREFIX = 'free.';
const HELD_PREFIX = 'held.';
/**
 * Inside the lease directory: the replaced version of the record, kept as the file the next
 * locked write overwrites, named `spare.<writer tag>.<0|1>` (see commitLocked()).
 */
const SPARE_PREFIX = 'spare.';
/** Records this driver committed last, by file key: at most this many, each at most RECENT_MAX_BYTES. */
const RECENT_MAX = 1000;
const RECENT_MAX_BYTES = 8 * 1024;
/** Descriptors kept open by `Recent` entries (two per session at most), across all sessions. */
const RECENT_MAX_FDS = 256;
const TEMP_PREFIX = '.tmp.';
const ROOT_GONE_PREFIX = '.gone.';

const BACKOFF_MIN_MS = 5;
const BACKOFF_MAX_MS = 50;
/** Directory entries handled concurrently by scans (gc, listByUser, destroyByUser): bounds memory and open files. */
const SCAN_BATCH = 64;
/**
 * Leftovers of a crashed process (temp files, half-removed directories, lock directories of an
 * older release) are removed once this old. Far above any real write or acquisition time, so
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
  /** CRC-32 (8 hex digits) of the text before it; always the last field (v2). */
  c?: string;
}

/** `torn`: a v2 file whose checksum does not match (a file being rewritten, or damaged). */
type Decoded = { kind: 'ok'; id: string; record: SessionRecord } | { kind: 'garbage' } | { kind: 'torn' } | { kind: 'future'; version: number };

/**
 * What this driver instance committed last for one session. It stays true exactly while the
 * lease directory still has the free name this instance released it to: any lock renames that
 * name away (and every release picks a new one), and every change of the record without the
 * lock (destroy, gc, an unlocked write) moves the whole lease directory away. So when
 * `lockAndRead` takes the lock by renaming exactly that name, nothing has changed since: the record
 * is this one, the spare is still `spare`, and the descriptors below still reach those files.
 */
interface Recent {
  record: SessionRecord;
  /** Byte length of the record's file. */
  bytes: number;
  /** Name of the spare in the lease directory, and its byte length (Infinity: not known). */
  spare: string;
  spareBytes: number;
  /** The free name this instance released the lease to; null while `heldBy` still holds it. */
  free: string | null;
  /** The lock token under which this was committed, while that lock is held; else null. */
  heldBy: string | null;
  /**
   * Open for writing: the spare's file and the record's file (the next spare), so that a
   * steady stream of commits opens and closes nothing. Null when not kept (see RECENT_MAX_FDS).
   */
  spareFd: number | null;
  recordFd: number | null;
}

/** A lease taken: our token, and the free name it was taken under (null: created or taken over). */
interface Taken {
  token: string;
  via: string | null;
}

/** How many descriptors an entry of `recent` keeps open. */
function keptFds(entry: Recent): number {
  return (entry.spareFd === null ? 0 : 1) + (entry.recordFd === null ? 0 : 1);
}

/** A released lease's name: `free.<unique name>`, or `free` from earlier builds. */
function isFreeName(name: string): boolean {
  return name === FREE || name.startsWith(FREE_PREFIX);
}

/** A lock() call of this process waiting for a session's lock. */
interface Waiter {
  /** Set when woken while not sleeping, so that the wake-up is not lost. */
  woken: boolean;
  /** Ends the current sleep early. */
  resume: (() => void) | null;
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
  /**
   * Sessions this instance committed last (see `Recent`): a locked read of one of them checks
   * that its spare is still there (one call) instead of reading the file (three).
   */
  private readonly recent = new Map<string, Recent>();
  /**
   * The spare a `lockAndRead` found (and opened for writing) under a lock, by lock token: the
   * commit writes through it without opening it again. Closed by the commit or by the release.
   */
  private readonly openSpares = new Map<string, { fd: number; spare: string }>();
  /** Names this instance's spares, so that another process's (or instance's) never matches. */
  private readonly tag = randomBytes(9).toString('base64url');
  /** Descriptors held by `recent` entries (bounded by RECENT_MAX_FDS). */
  private recentFds = 0;
  /**
   * The `recent` entries that hold descriptors, least recently committed first: when the bound
   * is reached, the sessions committed longest ago give theirs up, so that the busy ones keep them.
   */
  private readonly fdHolders = new Map<string, Recent>();

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
    for (const { fd } of this.openSpares.values()) closeCb(fd, () => undefined);
    this.openSpares.clear();
    for (const key of [...this.recent.keys()]) this.forget(key);
    for (const queue of this.queues.values()) for (const waiter of queue) wakeWaiter(waiter);
  }

  /** Drops what this instance remembers of a session, closing the descriptors it kept. */
  private forget(key: string): void {
    const known = this.recent.get(key);
    if (known === undefined) return;
    this.recent.delete(key);
    this.closeKept(key, known);
  }

  /** Closes the descriptors an entry of `recent` holds (it stays remembered). */
  private closeKept(key: string, known: Recent): void {
    for (const fd of [known.spareFd, known.recordFd]) {
      if (fd === null) continue;
      this.recentFds--;
      closeCb(fd, () => undefined);
    }
    known.spareFd = null;
    known.recordFd = null;
    this.fdHolders.delete(key);
  }

  /** Takes an entry out of `recent` with its descriptors, which the caller now owns. */
  private take(key: string): Recent | undefined {
    const known = this.recent.get(key);
    if (known === undefined) return undefined;
    this.recent.delete(key);
    this.fdHolders.delete(key);
    this.recentFds -= keptFds(known);
    return known;
  }

  /** Lends the spare's kept descriptor to a lock holder (null if none is kept). */
  private lendSpare(key: string, known: Recent): number | null {
    const fd = known.spareFd;
    if (fd === null) return null;
    known.spareFd = null;
    this.recentFds--;
    if (known.recordFd === null) this.fdHolders.delete(key);
    return fd;
  }

  /** Takes a lent spare descriptor back (a release without a write); false if it must be closed. */
  private returnSpare(key: string, known: Recent, fd: number): boolean {
    if (this.closed || known.spareFd !== null || this.recentFds >= RECENT_MAX_FDS) return false;
    known.spareFd = fd;
    this.recentFds++;
    this.fdHolders.set(key, known);
    return true;
  }

  /**
   * Remembers a commit, with its descriptors: within RECENT_MAX_FDS, the sessions committed
   * longest ago close theirs to make room.
   */
  private remember(key: string, entry: Recent): void {
    this.forget(key);
    if (this.recent.size >= RECENT_MAX) this.forget(this.recent.keys().next().value!);
    if (this.closed) {
      // close() ran while this commit was in flight: keep the memory, not the descriptors.
      for (const fd of [entry.spareFd, entry.recordFd]) if (fd !== null) closeCb(fd, () => undefined);
      entry.spareFd = null;
      entry.recordFd = null;
    }
    const fds = keptFds(entry);
    while (fds > 0 && this.recentFds + fds > RECENT_MAX_FDS && this.fdHolders.size > 0) {
      const [oldest, holder] = this.fdHolders.entries().next().value!;
      this.closeKept(oldest, holder);
    }
    this.recent.set(key, entry);
    if (fds === 0) return;
    this.recentFds += fds;
    this.fdHolders.set(key, entry);
  }

  /** The record, `null` when absent, past `evictAt`, or unreadable as a session file (see docs/drivers/file.md). */
  async read(id: string): Promise<SessionRecord | null> {
    const key = keyOf(id);
    let loaded: { decoded: Decoded } | null;
    try {
      loaded = await this.load(key, id);
    } catch (err) {
      throw this.storeError('read a session', err);
    }
    return loaded === null ? null : this.recordOf(loaded.decoded);
  }

  /** Replaces the record atomically; with `lockToken`, only while that token still owns the lock. */
  async write(id: string, record: SessionRecord, lockToken?: string): Promise<void> {
    await this.writeKey(id, keyOf(id), record, lockToken);
  }

  /** `lock` + `read` with the ID hashed once. */
  async lockAndRead(id: string, options: LockOptions): Promise<{ token: string; record: SessionRecord | null }> {
    const key = keyOf(id);
    const { token, via } = await this.acquire(key, options, () => this.recent.get(key)?.free);
    try {
      const known = this.recent.get(key);
      if (known !== undefined && known.free !== null && via === known.free) {
        // We took the lease under the name we released it to: nobody locked it since, so the
        // record is the one we wrote and the spare is where we left it. Its descriptor, if kept,
        // goes to the commit; otherwise opening it costs one call (and it stays open after).
        known.free = null;
        known.heldBy = token;
        const fd = this.lendSpare(key, known) ?? (await openForWrite(under(this.leaseDir(key), HELD_PREFIX + token, known.spare)));
        if (fd !== null) {
          this.openSpares.set(token, { fd, spare: known.spare });
          return { token, record: this.recordOf({ kind: 'ok', id, record: copyRecord(known.record) }) };
        }
      }
      this.forget(key);
      return { token, record: await this.readLocked(id, key) };
    } catch (err) {
      await this.release(key, token).catch(() => undefined);
      // The remembered spare's open (EMFILE, EIO, …) fails like any other read of the store.
      throw this.storeError('read a session', err);
    }
  }

  /** Fenced `write` + `unlock`; the release needs no check for a record, since it was just written. */
  async writeAndUnlock(id: string, record: SessionRecord, token: string): Promise<void> {
    const key = keyOf(id);
    await this.writeKey(id, key, record, token);
    await this.release(key, token, true);
  }

  /**
   * The record read under its lock: nobody rewrites the file in place while we hold it (only a
   * holder's spare is rewritten, and a revoked holder's spare is dropped at takeover), so one
   * plain read is consistent.
   */
  private async readLocked(id: string, key: string): Promise<SessionRecord | null> {
    let text: string | null;
    try {
      text = await readSmallFile(this.recordPath(key));
    } catch (err) {
      throw this.storeError('read a session', err);
    }
    return text === null ? null : this.recordOf(this.decode(text, key, id));
  }

  private recordOf(decoded: Decoded): SessionRecord | null {
    if (decoded.kind === 'future') throw this.futureError(decoded.version);
    if (decoded.kind !== 'ok') return null;
    return decoded.record.evictAt <= Date.now() ? null : decoded.record;
  }

  private async writeKey(id: string, key: string, record: SessionRecord, lockToken: string | undefined): Promise<void> {
    const body = encode(id, record);
    if (lockToken === undefined) {
      // Without the lock this write bypasses the lease, so it revokes the lease before and after,
      // like destroy: a holder, and any instance's memory of the record (`recent`), from before
      // this write or from in between is voided. (If this process dies between its rename and the
      // second revoke, an instance that locked in between may keep its memory and later commit
      // over this write: mixing locked and unlocked writers on one session can lose updates anyway.)
      const dir = this.leaseDir(key);
      this.forget(key);
      await this.guard('write a session', () => this.revokeAll(dir));
      await this.commitUnlocked(join(this.root, TEMP_PREFIX + uniqueName()), Buffer.from(body, 'utf8'), key);
      await this.guard('write a session', () => this.revokeAll(dir));
      return;
    }
    const lease = parseToken(lockToken);
    if (lease === null || lease.expiresAt <= Date.now()) throw new SessionLockException(LOCK_LOST);
    // The temp file lives in the holder's lease directory: once a successor renames that
    // directory away, neither this create nor the rename below can succeed, however long we were paused.
    await this.commitLocked(under(this.leaseDir(key), HELD_PREFIX + lockToken), lockToken, record, body, key, lease.expiresAt);
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
   * time) and resolves to how many; also removes idle lease directories of dead sessions and
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
    return (await this.acquire(keyOf(id), options)).token;
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
   * revocation stops the current holder from committing; the second catches a request that took
   * the lock (and read the record) between it and the delete. A request locking after that
   * reads "absent". Both move the whole lease directory away, so none is left for the dead ID.
   */
  private async destroyVoiding(key: string, remove: () => Promise<boolean>): Promise<boolean> {
    const dir = this.leaseDir(key);
    this.forget(key);
    await this.revokeAll(dir);
    const removed = await remove();
    await this.revokeAll(dir);
    return removed;
  }

  // ---- records ---------------------------------------------------------------------------

  private recordPath(key: string): string {
    return under(this.root, `${key}.json`);
  }

  private leaseDir(key: string): string {
    return under(this.root, `${key}.lease`);
  }

  /** The unlocked write: `data` to `temp` (0600, exclusive), renamed over the record (locked writes: commitLocked). */
  private async commitUnlocked(temp: string, data: Buffer, key: string): Promise<void> {
    try {
      await writeNewFile(temp, data);
    } catch (err) {
      if (codeOf(err) !== 'ENOENT') throw this.storeError('write a session', err);
      // The directory was removed after open() (a tmp cleaner, an operator): recreate it once.
      await this.ensureRoot();
      try {
        await writeNewFile(temp, data);
      } catch (again) {
        throw this.storeError('write a session', again);
      }
    }
    try {
      await rename(temp, this.recordPath(key));
    } catch (err) {
      await unlink(temp).catch(() => undefined);
      throw this.storeError('write a session', err);
    }
  }

  /**
   * The locked write. Creating a file per write and freeing the replaced one cost more than all
   * the other file-system calls of a request together on ext4 without a journal (its inode
   * allocator skips recently freed inodes one by one; docs/drivers/file.md has the numbers). So the
   * holder overwrites the spare (the version before the current one), keeps the current record
   * as the next spare through a hard link, and renames the spare over the record: no inode is
   * created or freed. Everything happens inside the holder's lease directory: once a successor
   * renames that away, no step resolves any more, and the takeover unlinks the old holder's spare
   * so that a write still in flight through an open descriptor reaches no session.
   */
  private async commitLocked(held: string, token: string, record: SessionRecord, body: string, key: string, leaseEnd: number): Promise<void> {
    const data = Buffer.from(body, 'utf8');
    // Out of `recent`, with its descriptors now ours (closed below unless they move on).
    const known = this.take(key);
    const open = this.openSpares.get(token);
    this.openSpares.delete(token);
    // Held since our own last commit (locked under its free name, or still the same lock): the
    // remembered spare and record are those files, and their kept descriptors reach them.
    const own = known !== undefined && known.heldBy === token;
    /** The spare's descriptor we write through; it stays open as the record's descriptor. */
    let keptFd: number | null = null;
    /** The record's descriptor, kept from our last commit: the next spare's (checked below). */
    let recordFd = own ? known.recordFd : null;
    const unused: number[] = [];
    if (open !== undefined) {
      if (own && open.spare === known.spare) keptFd = open.fd;
      else unused.push(open.fd);
    }
    if (known !== undefined && known.spareFd !== null) {
      if (own && keptFd === null) keptFd = known.spareFd;
      else unused.push(known.spareFd);
    }
    if (!own && known !== undefined && known.recordFd !== null) unused.push(known.recordFd);
    for (const fd of unused) closeCb(fd, () => undefined);
    const closeOurs = (): void => {
      for (const fd of [keptFd, recordFd]) if (fd !== null) closeCb(fd, () => undefined);
      keptFd = null;
      recordFd = null;
    };
    let spare: string | null = null;
    /** The file being written: if the write fails half-way, it must not stay behind. */
    let writing: string | null = null;
    const overwrite = async (name: string, cut: boolean, sole: boolean): Promise<boolean> => {
      writing = under(held, name);
      if (await overwriteFile(writing, data, cut, sole)) return true;
      writing = null;
      return false;
    };
    try {
      // Our own spare if we committed last (its length is known, so it is cut only when needed);
      // otherwise whatever spare the lease directory holds.
      if (keptFd !== null) {
        writing = under(held, known!.spare);
        const fd = keptFd;
        keptFd = null; // closed by overwriteFd if the write fails
        await overwriteFd(fd, data, data.length < known!.spareBytes, true);
        keptFd = fd;
        spare = known!.spare;
      } else if (known !== undefined && (await overwrite(known.spare, data.length < known.spareBytes, false))) {
        spare = known.spare;
      } else {
        for (const name of await readdir(held)) {
          if (!name.startsWith(SPARE_PREFIX)) continue;
          // A spare we did not leave is checked to have no other name (see overwriteFile).
          if (spare === null && (await overwrite(name, true, true))) spare = name;
          // Normally there is one; any other goes, so that no instance's spare outlives a commit
          // that was not its own (see `Recent`): if one cannot be deleted, nothing is committed.
          else {
            await unlink(under(held, name)).catch((err: unknown) => {
              if (codeOf(err) !== 'ENOENT') throw err;
            });
          }
        }
      }
      if (spare === null) {
        // No spare yet (a new session, or the first write after a takeover): a new file.
        writing = under(held, `w.${uniqueName()}.tmp`);
        await writeNewFile(writing, data);
      }
    } catch (err) {
      closeOurs();
      // A half-written spare must not be left for the next holder (nor for an unlocked reader
      // that still has it open): it goes, and the next write creates a new file.
      if (writing !== null) await this.discard(writing, key);
      if (codeOf(err) === 'ENOENT') throw new SessionLockException(LOCK_LOST);
      throw this.storeError('write a session', err);
    }
    const source: string = writing!;
    const path = this.recordPath(key);
    // The next spare: ours, under the name the current spare does not have.
    const next = `${SPARE_PREFIX}${this.tag}.${spare === `${SPARE_PREFIX}${this.tag}.0` ? 1 : 0}`;
    const kept = under(held, next);
    const keeping = await keepLink(path, kept);
    // The next spare's length is known only from the check below; otherwise (no descriptor kept)
    // the file at the record's name may not be the one we wrote, so the next write cuts it.
    let nextBytes = Infinity;
    if (recordFd !== null) {
      // The record's descriptor becomes the next spare's only if the name just linked is that
      // file: a record replaced behind the lease (an unlocked writer that died before its second
      // revoke, a file restored by hand) must not leave us writing into a file with no name while
      // the spare is another one. Its size is then the spare's exact length. Synchronous on
      // purpose: an fstat of an open descriptor reads an inode held in memory and never waits on
      // the disk, and through the thread pool it cost ~10% of a request on the benchmark machine.
      const info = keeping ? fstatOrNull(recordFd) : null;
      if (info !== null && info.nlink === 2) {
        nextBytes = info.size;
      } else {
        closeCb(recordFd, () => undefined);
        recordFd = null;
      }
    }
    try {
      if (Date.now() >= leaseEnd) throw new SessionLockException(LOCK_LOST);
      await rename(source, path);
    } catch (err) {
      // Not committed: neither the version we wrote nor the extra name of the record may stay. A
      // spare holding a refused version could otherwise be read by an unlocked reader that opened
      // it back when it was the record, or be published later without being cut to length.
      closeOurs();
      await this.discard(source, key);
      if (keeping) await this.discard(kept, key);
      if (err instanceof SessionException) throw err;
      if (codeOf(err) === 'ENOENT') throw new SessionLockException(LOCK_LOST);
      throw this.storeError('write a session', err);
    }
    if (!keeping || data.length > RECENT_MAX_BYTES) {
      closeOurs();
      return;
    }
    // The kept file is the version we replaced (its length checked above). The descriptors swap
    // roles: the file we wrote is the record now, the old record the spare.
    this.remember(key, {
      record: copyRecord(record),
      bytes: data.length,
      spare: next,
      spareBytes: nextBytes,
      free: null,
      heldBy: token,
      spareFd: recordFd,
      recordFd: keptFd,
    });
  }

  /**
   * Deletes a file of a write that was not committed; if that fails, moves the whole lease
   * directory away instead, so that no holder and no instance's memory can ever use that file.
   */
  private async discard(path: string, key: string): Promise<void> {
    try {
      await unlink(path);
    } catch (err) {
      if (codeOf(err) !== 'ENOENT') await this.revokeAll(this.leaseDir(key)).catch(() => undefined);
    }
  }

  /** `id`, when known, is compared directly instead of hashing the stored one. */
  private decode(text: string, key: string, id?: string): Decoded {
    const sealed = isSealed(text);
    if (sealed === false) return { kind: 'torn' };
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch {
      return { kind: 'garbage' };
    }
    if (!isObject(raw)) return { kind: 'garbage' };
    if (typeof raw.v === 'number' && Number.isInteger(raw.v) && raw.v > FORMAT_VERSION) return { kind: 'future', version: raw.v };
    const env = raw as Partial<Envelope>;
    // v2 must carry its checksum (v1 files were never rewritten in place, so they need none).
    if (env.v === FORMAT_VERSION && sealed !== true) return { kind: 'torn' };
    if ((env.v !== FORMAT_VERSION && env.v !== 1) || !isValidSessionId(env.id) || (id !== undefined ? env.id !== id : keyOf(env.id) !== key)) return { kind: 'garbage' };
    if (typeof env.payload !== 'string' || !isFiniteNumber(env.evictAt)) return { kind: 'garbage' };
    const meta = readMeta(env.meta);
    if (meta === null) return { kind: 'garbage' };
    return { kind: 'ok', id: env.id, record: { payload: env.payload, meta, evictAt: env.evictAt } };
  }

  /**
   * Reads a record without its lock, with the identity of what was read (so a later delete can
   * check it is still that file). A locked write may be rewriting, in place, a file that was the
   * record when we opened it (see commitLocked), so an unlocked read counts only if the file is
   * whole (its checksum matches) and is still the record after the read; otherwise it reads again.
   * After UNLOCKED_READ_ATTEMPTS it reads under the session's lock instead, where what it reads
   * is final (a bad checksum there is damage). Either way it returns a version that was committed
   * while it ran: never a mix, never an uncommitted one.
   */
  private async load(key: string, id?: string): Promise<{ decoded: Decoded; stats: Stats } | null> {
    for (let attempt = 1; attempt <= UNLOCKED_READ_ATTEMPTS; attempt++) {
      const read = await this.readOnce(key, id);
      if (read === null || read.settled) return read && { decoded: read.decoded, stats: read.stats };
      await sleep(attempt);
    }
    const { token } = await this.acquire(key, SETTLE_LOCK);
    try {
      return await this.loadLocked(key, id);
    } finally {
      await this.release(key, token);
    }
  }

  /** `load` for a caller that holds the session's lock: one read, and what it finds is final. */
  private async loadLocked(key: string, id?: string): Promise<{ decoded: Decoded; stats: Stats } | null> {
    const read = await this.readOnce(key, id);
    if (read === null) return null;
    return { decoded: read.decoded.kind === 'torn' ? { kind: 'garbage' } : read.decoded, stats: read.stats };
  }

  /**
   * One read of a record file; `settled` when it is whole and still the record after the read
   * (checked while our descriptor keeps the inode alive, so its number cannot have been reused).
   */
  private async readOnce(key: string, id?: string): Promise<{ decoded: Decoded; stats: Stats; settled: boolean } | null> {
    const path = this.recordPath(key);
    let handle;
    try {
      handle = await this.openUnlocked(path);
    } catch (err) {
      if (codeOf(err) === 'ENOENT') return null;
      throw err;
    }
    try {
      const text = await handle.readFile('utf8');
      const stats = await handle.stat();
      const now = await stat(path).catch((err: unknown) => {
        if (codeOf(err) === 'ENOENT') return null;
        throw err;
      });
      if (now === null) return null;
      const decoded = this.decode(text, key, id);
      const current = now.ino === stats.ino && now.dev === stats.dev;
      return { decoded, stats, settled: current && decoded.kind !== 'torn' && decoded.kind !== 'garbage' };
    } finally {
      await handle.close();
    }
  }

  /** Opens a record for an unlocked read; a seam for tests that pause a reader between open and read. */
  protected openUnlocked(path: string): Promise<FileHandle> {
    return open(path, 'r');
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

  /**
   * `lock()` by file key (gc locks files whose ID it has not read). Resolves to our token and the
   * free name the lease was taken under (null: created, or taken over from an expired holder).
   * `expected`: the free name to try first (the one this instance last released to).
   */
  private async acquire(key: string, { waitMs, ttlMs }: LockOptions, expected?: () => string | null | undefined): Promise<Taken> {
    if (!Number.isFinite(ttlMs) || ttlMs <= 0) throw new SessionException('lock ttl must be a positive number of milliseconds.');
    const dir = this.leaseDir(key);
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
        const outcome = await this.guard('take a session lock', () => this.tryTake(dir, ttlMs, true, expected?.() ?? undefined));
        if ('token' in outcome) return outcome;
        const now = Date.now();
        if (now >= deadline) throw new SessionLockException();
        let pause = Math.min(backoff, deadline - now);
        // Wake right when a dead holder's lease runs out rather than up to one backoff later.
        if (outcome.heldUntil > 0) pause = Math.min(pause, Math.max(1, outcome.heldUntil - now + 1));
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

  /**
   * One attempt at the lease of `dir`: our token, or when the lease is held, the end of that
   * lease (`heldUntil` 0: in flux, try again after a backoff). Every way in is one `rename()`
   * of the single lease directory to `held.<our token>`, so one contender wins each change.
   */
  private async tryTake(dir: string, ttlMs: number, create: boolean, expected?: string): Promise<Taken | { heldUntil: number }> {
    const token = newToken(ttlMs);
    const mine = under(dir, HELD_PREFIX + token);
    // The common case, a lease we released last: one system call.
    if (expected !== undefined && (await renameUnlessMissing(under(dir, expected), mine))) return { token, via: expected };
    let names: string[];
    try {
      names = await readdir(dir);
    } catch (err) {
      if (codeOf(err) !== 'ENOENT') throw err;
      if (!create) return { heldUntil: 0 };
      return (await this.createLease(dir, token)) ? { token, via: null } : { heldUntil: 0 };
    }
    const leases = names.filter((name) => isFreeName(name) || name.startsWith(HELD_PREFIX));
    if (leases.length === 0) {
      // Only a release that removes the lease directory (or a crash in its middle) leaves it
      // without a lease; rmdir() succeeds only if it is really empty. Anything else in it is not
      // ours (a hand-made directory): move it away rather than wait on it forever.
      try {
        await rmdir(dir);
      } catch (err) {
        const code = codeOf(err);
        if (code === 'ENOTEMPTY' || code === 'EEXIST') await this.revokeAll(dir);
        else if (code !== 'ENOENT') throw err;
      }
      return { heldUntil: 0 };
    }
    // Two names: a listing that overlapped a rename. Look again.
    if (leases.length > 1) return { heldUntil: 0 };
    if (isFreeName(leases[0])) return (await renameUnlessMissing(under(dir, leases[0]), mine)) ? { token, via: leases[0] } : { heldUntil: 0 };
    const current = leases[0].slice(HELD_PREFIX.length);
    const lease = parseToken(current);
    if (lease !== null && lease.expiresAt > Date.now()) return { heldUntil: lease.expiresAt };
    // Takeover: renaming the expired holder's directory revokes it (its paths stop resolving)
    // and makes it ours in the same step; of several contenders exactly one rename succeeds.
    if (!(await renameUnlessMissing(join(dir, leases[0]), mine))) return { heldUntil: 0 };
    // Temp files of the old holder's unfinished writes can never be committed now: drop them.
    // This is what stops a revoked holder that still has its spare open, so the lock is handed out
    // only once they are gone. Revoked meanwhile (destroy): look again. Cannot delete them: move
    // the whole lease directory away (the next lock starts a new one) and look again.
    try {
      for (const name of await readdir(mine)) {
        await unlink(under(mine, name)).catch((err: unknown) => {
          if (codeOf(err) !== 'ENOENT') throw err;
        });
      }
    } catch (err) {
      if (codeOf(err) !== 'ENOENT') await this.revokeAll(dir);
      return { heldUntil: 0 };
    }
    return { token, via: null };
  }

  /**
   * Creates the lease directory of a session already holding our lease: it is built under a
   * temp name and renamed into place, so no process ever sees a lease directory without its
   * lease. False if another process created it first.
   */
  private async createLease(dir: string, token: string): Promise<boolean> {
    const temp = join(this.root, TEMP_PREFIX + uniqueName());
    try {
      await mkdir(temp, { mode: DIR_MODE });
    } catch (err) {
      if (codeOf(err) !== 'ENOENT') throw err;
      await this.ensureRoot();
      await mkdir(temp, { mode: DIR_MODE });
    }
    try {
      await mkdir(join(temp, HELD_PREFIX + token), { mode: DIR_MODE });
      await rename(temp, dir);
      return true;
    } catch (err) {
      await rm(temp, { recursive: true, force: true }).catch(() => undefined);
      const code = codeOf(err);
      if (code === 'ENOTEMPTY' || code === 'EEXIST') return false;
      throw err;
    }
  }

  /**
   * `unlock()` by file key. `hasRecord` true skips the check for a record (the caller just
   * wrote it).
   */
  private async release(key: string, token: string, hasRecord = false): Promise<void> {
    const known = this.recent.get(key);
    const ours = known !== undefined && known.heldBy === token;
    const open = this.openSpares.get(token);
    if (open !== undefined) {
      // Locked and read, but not written: the spare's descriptor goes back to what we remember.
      this.openSpares.delete(token);
      if (!(ours && open.spare === known.spare && this.returnSpare(key, known, open.fd))) closeCb(open.fd, () => undefined);
    }
    if (typeof token !== 'string' || parseToken(token) === null) return;
    const dir = this.leaseDir(key);
    const mine = under(dir, HELD_PREFIX + token);
    await this.guard('release a session lock', async () => {
      // A lock on an ID with no record (an unknown or dead cookie) would otherwise leave a
      // directory behind per request until the next gc: while still holding the lease, move it
      // out (which also releases it) and remove the then empty lease directory.
      if (!hasRecord && !(await exists(this.recordPath(key)))) {
        if (ours) this.forget(key);
        const gone = join(this.root, ROOT_GONE_PREFIX + uniqueName());
        if (!(await renameUnlessMissing(mine, gone))) return;
        await rmdir(dir).catch(() => undefined);
        await removeTree(gone);
      } else {
        // A new name on every release: see FREE_PREFIX.
        const free = FREE_PREFIX + uniqueName();
        if (!(await renameUnlessMissing(mine, under(dir, free)))) {
          // ENOENT: a successor already revoked us, so a non-owner never releases anyone's lock.
          if (ours && this.recent.get(key) === known) this.forget(key);
          return;
        }
        if (ours && this.recent.get(key) === known) {
          known.heldBy = null;
          known.free = free;
        }
      }
      const next = this.queues.get(key)?.[0];
      if (next) wakeWaiter(next);
    });
  }

  /**
   * Revokes every holder at once by moving the whole lease directory away (their paths stop
   * resolving); the next lock starts a new lease directory.
   */
  private async revokeAll(dir: string): Promise<void> {
    const gone = join(this.root, ROOT_GONE_PREFIX + uniqueName());
    if (await renameUnlessMissing(dir, gone)) await rm(gone, { recursive: true, force: true }).catch(() => undefined);
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
        ({ token } = await this.acquire(key, { waitMs: 0, ttlMs: GC_LOCK_TTL_MS }));
      } catch (err) {
        if (err instanceof SessionLockException) return 0;
        throw err;
      }
      try {
        const loaded = await this.loadLocked(key);
        if (loaded === null || !isCollectable(loaded, now)) return 0;
        return (await this.unlinkIfSame(this.recordPath(key), loaded.stats)) ? 1 : 0;
      } finally {
        // With the record gone, releasing also removes the lease directory.
        await this.release(key, token);
      }
    }
    const lease = LEASE_DIR.exec(name);
    if (lease) {
      // A dead session's lease directory: take the lease (no wait) and release it, which removes
      // the directory when there is still no record.
      if (await exists(this.recordPath(lease[1]))) return 0;
      const outcome = await this.tryTake(join(this.root, name), GC_LOCK_TTL_MS, false);
      if ('token' in outcome) await this.release(lease[1], outcome.token);
      return 0;
    }
    if (name.startsWith(TEMP_PREFIX) || name.startsWith(ROOT_GONE_PREFIX) || LEGACY_LOCK_DIR.test(name)) {
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

function sleep(ms: number): Promise<void> {
  return new Promise((resolveSleep) => setTimeout(resolveSleep, ms));
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
  return decoded.kind === 'garbage' || decoded.kind === 'torn' || (decoded.kind === 'ok' && decoded.record.evictAt <= now);
}

/**
 * Keys of recently used IDs: a request hashes its ID in lockAndRead and again in
 * writeAndUnlock. Only validated IDs get in, so a hit is also a validation.
 */
const recentKeys = new Map<string, string>();
const RECENT_KEYS_MAX = 1024;

/** The file key of a session: SHA-256 of the validated ID, so that nothing client-supplied reaches a path. */
function keyOf(id: string): string {
  const known = recentKeys.get(id);
  if (known !== undefined) return known;
  if (!isValidSessionId(id)) throw new SessionException('Refusing a malformed session ID before it reaches storage.');
  const key = createHash('sha256').update(id).digest('hex');
  // Oldest first out: a Map iterates in insertion order.
  if (recentKeys.size >= RECENT_KEYS_MAX) recentKeys.delete(recentKeys.keys().next().value!);
  recentKeys.set(id, key);
  return key;
}

function encode(id: string, record: SessionRecord): string {
  if (!isObject(record) || typeof record.payload !== 'string' || !isFiniteNumber(record.evictAt) || readMeta(record.meta) === null) {
    throw new SessionException('Refusing to store a malformed session record (payload must be a string, evictAt and meta times finite numbers).');
  }
  const envelope: Envelope = { v: FORMAT_VERSION, id, evictAt: record.evictAt, meta: readMeta(record.meta)!, payload: record.payload };
  const head = JSON.stringify(envelope).slice(0, -1) + SEAL_HEAD;
  return `${head}${hex8(crc32(head))}"}`;
}

function hex8(n: number): string {
  return n.toString(16).padStart(8, '0');
}

/**
 * true: ends with a checksum that matches; false: ends with one that does not (a file being
 * rewritten, or damaged); null: has none (a v1 file, or not an envelope at all). A JSON string
 * escapes every `"` inside it, so `,"c":"` can only be the envelope's own last field.
 */
function isSealed(text: string): boolean | null {
  const at = text.length - SEAL_LENGTH;
  if (at <= 0 || !text.startsWith(SEAL_HEAD, at) || !text.endsWith('"}')) return null;
  return hex8(crc32(text.slice(0, at + SEAL_HEAD.length))) === text.slice(at + SEAL_HEAD.length, -2);
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

/** A released lease directory is normally empty: rmdir is one call where rm({ recursive }) is several. */
async function removeTree(path: string): Promise<void> {
  try {
    await rmdir(path);
  } catch (err) {
    if (codeOf(err) === 'ENOENT') return;
    await rm(path, { recursive: true, force: true }).catch(() => undefined);
  }
}

/**
 * `join()` for the hot paths, without its normalisation (a few µs a call): `base` is absolute
 * and normalised (the root, or a path built by `under`), and every name is one of ours (hex
 * keys, tokens, fixed prefixes), never a separator or `..`.
 */
function under(base: string, ...names: string[]): string {
  return names.length === 1 ? base + sep + names[0] : base + sep + names.join(sep);
}

function copyRecord(record: SessionRecord): SessionRecord {
  return { payload: record.payload, evictAt: record.evictAt, meta: { ...record.meta } };
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

/**
 * Lock tokens and temp names need uniqueness across the processes sharing the directory, not
 * secrecy (they never leave the server): a random per-process prefix and a counter, 22 chars.
 */
let namePrefix = randomBytes(12).toString('base64url');
let nameCounter = 0;
const COUNTER_SPAN = 36 ** 6;

function uniqueName(): string {
  if (nameCounter >= COUNTER_SPAN) {
    namePrefix = randomBytes(12).toString('base64url');
    nameCounter = 0;
  }
  return namePrefix + (nameCounter++).toString(36).padStart(6, '0');
}

function newToken(ttlMs: number): string {
  return `${Date.now() + ttlMs}.${uniqueName()}`;
}

/**
 * rename(), false when the source is gone (someone else moved it first). The callback API: it
 * runs up to three times per request, and costs a third less than `fs.promises.rename`.
 */
function renameUnlessMissing(from: string, to: string): Promise<boolean> {
  return new Promise((resolveRename, rejectRename) => {
    renameCb(from, to, (err) => {
      if (!err) resolveRename(true);
      else if (err.code === 'ENOENT') resolveRename(false);
      else rejectRename(err);
    });
  });
}

/**
 * Links `existing` under `name` (replacing a leftover `name`); false if `existing` is missing or
 * the link cannot be made, in which case the write simply does not keep a spare.
 */
function keepLink(existing: string, name: string): Promise<boolean> {
  return new Promise((resolveLink) => {
    linkCb(existing, name, (err) => {
      if (!err) return resolveLink(true);
      if (err.code !== 'EEXIST') return resolveLink(false);
      unlinkCb(name, () => linkCb(existing, name, (again) => resolveLink(!again)));
    });
  });
}

/** fstat of an open descriptor (synchronous: see commitLocked), null if it fails. */
function fstatOrNull(fd: number): Stats | null {
  try {
    return fstatSync(fd);
  } catch {
    return null;
  }
}

/** Opens an existing file for writing; null if it does not exist. */
function openForWrite(path: string): Promise<number | null> {
  return new Promise((resolveOpen, rejectOpen) => {
    openCb(path, fsConstants.O_WRONLY, (err, fd) => {
      if (!err) resolveOpen(fd);
      else if (err.code === 'ENOENT') resolveOpen(null);
      else rejectOpen(err);
    });
  });
}

/** `overwriteFile` on a descriptor already open for writing; closes it in every case, except after success with `keep`. */
function overwriteFd(fd: number, data: Buffer, cut: boolean, keep = false): Promise<void> {
  return new Promise((resolveWrite, rejectWrite) => {
    const fail = (err: Error): void => closeCb(fd, () => rejectWrite(err));
    const from = (offset: number): void => {
      writeCb(fd, data, offset, data.length - offset, offset, (writeErr, written) => {
        if (writeErr) return fail(writeErr);
        if (offset + written < data.length) return from(offset + written);
        const done = (): void => (keep ? resolveWrite() : closeCb(fd, (closeErr) => (closeErr ? rejectWrite(closeErr) : resolveWrite())));
        if (!cut) return done();
        ftruncateCb(fd, data.length, (truncErr) => (truncErr ? fail(truncErr) : done()));
      });
    };
    from(0);
  });
}

/**
 * Overwrites the existing file `path` with `data` from offset 0 and, with `cut`, cuts it to that
 * length (needed only when the file may be longer): open, write, [ftruncate], close. Truncating
 * to 0 first would free and reallocate its blocks. False if there is no such file; nothing is
 * created. With `sole`, also false (and the name removed) if the file has another name.
 */
function overwriteFile(path: string, data: Buffer, cut: boolean, sole = false): Promise<boolean> {
  return new Promise((resolveWrite, rejectWrite) => {
    openCb(path, fsConstants.O_WRONLY, (openErr, fd) => {
      if (openErr) {
        if (openErr.code === 'ENOENT') resolveWrite(false);
        else rejectWrite(openErr);
        return;
      }
      const write = (): void => {
        overwriteFd(fd, data, cut).then(() => resolveWrite(true), rejectWrite);
      };
      if (sole) {
        // A file with a second name (the session file itself, linked by a revoked holder whose
        // link() raced the takeover) must never be written in place: drop the name, use a new file.
        return fstatCb(fd, (statErr, info) => {
          if (statErr) return closeCb(fd, () => rejectWrite(statErr));
          if (info.nlink === 1) return write();
          closeCb(fd, () => unlinkCb(path, () => resolveWrite(false)));
        });
      }
      write();
    });
  });
}

const READ_CHUNK = 16 * 1024;

/**
 * Creates `path` (0600, exclusive) holding `data`: open, then `overwriteFd` (callback API, no
 * FileHandle bookkeeping). A failed write removes the partial file.
 */
function writeNewFile(path: string, data: Buffer): Promise<void> {
  return new Promise((resolveWrite, rejectWrite) => {
    openCb(path, 'wx', FILE_MODE, (openErr, fd) => {
      if (openErr) return rejectWrite(openErr);
      overwriteFd(fd, data, false).then(resolveWrite, (err: unknown) => unlinkCb(path, () => rejectWrite(err)));
    });
  });
}

/**
 * The whole file as UTF-8, or null if it does not exist: open, read, close with the callback
 * API, one system call fewer (no fstat) and much less bookkeeping than `fs.promises.readFile`.
 */
function readSmallFile(path: string): Promise<string | null> {
  return new Promise((resolveRead, rejectRead) => {
    openCb(path, 'r', (openErr, fd) => {
      if (openErr) {
        if (openErr.code === 'ENOENT') resolveRead(null);
        else rejectRead(openErr);
        return;
      }
      const chunks: Buffer[] = [];
      const finish = (err: Error | null): void => {
        closeCb(fd, () => undefined);
        if (err) rejectRead(err);
        else resolveRead(chunks.length === 1 ? chunks[0].toString('utf8') : Buffer.concat(chunks).toString('utf8'));
      };
      const next = (): void => {
        const buffer = Buffer.allocUnsafe(READ_CHUNK);
        readCb(fd, buffer, 0, READ_CHUNK, null, (readErr, bytes) => {
          if (readErr) return finish(readErr);
          if (bytes > 0) chunks.push(bytes === READ_CHUNK ? buffer : buffer.subarray(0, bytes));
          if (bytes === READ_CHUNK) next();
          else finish(null);
        });
      };
      next();
    });
  });
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
