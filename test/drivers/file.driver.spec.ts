import { describe, it, expect, beforeAll, afterAll, afterEach, jest } from '@jest/globals';
import { createHash } from 'node:crypto';
import { link, mkdtemp, open, readdir, readFile, readlink, rename, rm, stat, utimes, writeFile, mkdir, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileDriver } from '../../lib/drivers/file.driver.js';
import { SessionException, SessionLockException, SessionStoreUnavailableException } from '../../lib/contracts/session-exception.js';
import { describeDriverConformance } from './driver-conformance.js';
import { makeRecord, newId, sleep } from '../support/records.js';

const tempDirs: string[] = [];
async function freshDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'ml-file-driver-'));
  tempDirs.push(dir);
  return dir;
}
afterAll(async () => {
  await Promise.all(tempDirs.map((d) => rm(d, { recursive: true, force: true })));
});

const keyOf = (id: string): string => createHash('sha256').update(id).digest('hex');

/** Descriptors this process has open. */
const openFds = async (): Promise<number> => (await readdir('/proc/self/fd')).length;

/** Requests that change the session (lockAndRead + writeAndUnlock), one per payload, in order. */
async function commitEach(d: FileDriver, id: string, payloads: string[]): Promise<void> {
  for (const payload of payloads) {
    const { token } = await d.lockAndRead!(id, { waitMs: 500, ttlMs: 10_000 });
    await d.writeAndUnlock!(id, makeRecord({ payload }), token);
  }
}

/** Waits (up to 2 s) for `check` to hold: descriptors are closed asynchronously. */
async function eventually(check: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 200 && !(await check()); i++) await sleep(10);
  expect(await check()).toBe(true);
}

/** The released lease's name in `leaseDir` (asserting that it holds exactly that). */
async function freeName(leaseDir: string): Promise<string> {
  const names = await readdir(leaseDir);
  expect(names).toEqual([expect.stringMatching(/^free\.[\w-]+$/)]);
  return names[0];
}

describeDriverConformance('file', async () => {
  const dir = await freshDir();
  return { driver: new FileDriver({ path: join(dir, 'sessions') }), cleanup: () => rm(dir, { recursive: true, force: true }) };
});

describe('FileDriver specifics', () => {
  let base: string;
  let root: string;
  let driver: FileDriver;

  beforeAll(async () => {
    base = await freshDir();
    root = join(base, 'nested', 'sessions');
    driver = new FileDriver({ path: root });
    await driver.open();
  });
  afterAll(async () => {
    await driver.close();
  });
  afterEach(() => {
    jest.restoreAllMocks();
  });

  describe('layout and permissions', () => {
    it('creates the directory tree with mode 0700 on open()', async () => {
      expect((await stat(root)).mode & 0o777).toBe(0o700);
      expect((await stat(join(base, 'nested'))).mode & 0o777).toBe(0o700);
    });

    it('stores one 0600 file per session, named by the SHA-256 of the ID (no raw ID in any path)', async () => {
      const id = newId();
      await driver.write(id, makeRecord());
      const file = join(root, `${keyOf(id)}.json`);
      expect((await stat(file)).mode & 0o777).toBe(0o600);
      const names = await readdir(root);
      expect(names.some((n) => n.includes(id))).toBe(false);
      const stored = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
      expect(stored).toMatchObject({ v: 2, id });
      expect(stored.c).toMatch(/^[0-9a-f]{8}$/);
    });

    it('lease directories are 0700 and hold one entry: held.<token> while locked, free.<new name> once released', async () => {
      const id = newId();
      await driver.write(id, makeRecord());
      const token = await driver.lock(id, { waitMs: 1000, ttlMs: 10_000 });
      const leaseDir = join(root, `${keyOf(id)}.lease`);
      expect((await stat(leaseDir)).mode & 0o777).toBe(0o700);
      expect(await readdir(leaseDir)).toEqual([`held.${token}`]);
      expect((await stat(join(leaseDir, `held.${token}`))).mode & 0o777).toBe(0o700);
      await driver.unlock(id, token);
      const first = await freeName(leaseDir);
      // Every release names it anew: whoever remembers a free name knows nobody locked since.
      await driver.unlock(id, await driver.lock(id, { waitMs: 1000, ttlMs: 10_000 }));
      expect(await freeName(leaseDir)).not.toBe(first);
    });

    it('a lease released by an earlier build (a plain `free`) is taken as usual', async () => {
      const id = newId();
      await driver.write(id, makeRecord({ payload: 'old build' }));
      const leaseDir = join(root, `${keyOf(id)}.lease`);
      await driver.unlock(id, await driver.lock(id, { waitMs: 1000, ttlMs: 10_000 }));
      await rename(join(leaseDir, await freeName(leaseDir)), join(leaseDir, 'free'));
      const { token, record } = await driver.lockAndRead!(id, { waitMs: 1000, ttlMs: 10_000 });
      expect(record!.payload).toBe('old build');
      expect(await readdir(leaseDir)).toEqual([`held.${token}`]);
      await driver.unlock(id, token);
    });

    it('works on a directory that does not exist yet, and recreates it if it is removed after open()', async () => {
      const dir = join(await freshDir(), 'a', 'b');
      const d = new FileDriver({ path: dir });
      await d.open();
      const id = newId();
      await rm(dir, { recursive: true });
      await d.write(id, makeRecord({ payload: 'back' }));
      expect((await d.read(id))!.payload).toBe('back');
      await rm(dir, { recursive: true });
      const token = await d.lock(id, { waitMs: 500, ttlMs: 5000 });
      await d.unlock(id, token);
      await d.close();
    });

    it('open() fails with a message naming the option when the path is unusable', async () => {
      const file = join(await freshDir(), 'not-a-dir');
      await writeFile(file, 'x');
      await expect(new FileDriver({ path: file }).open()).rejects.toThrow(/file\.path/);
      expect(() => new FileDriver({ path: '' })).toThrow(/file\.path/);
    });
  });

  describe('ID validation', () => {
    it('rejects path-traversal and malformed IDs before any file-system access', async () => {
      // An unopened driver on a directory that does not exist: any fs call would fail with
      // ENOENT (or read null), so the validation error proves nothing reached the disk.
      const outside = await freshDir();
      const d = new FileDriver({ path: join(outside, 'missing') });
      const bad = ['../../etc/passwd', `../${newId()}`, newId() + '/../x', newId().slice(0, -1) + '.', 'ml_sess_%2e%2e%2f' + 'a'.repeat(34), newId() + '\0'];
      for (const id of bad) {
        await expect(d.read(id)).rejects.toThrow(/malformed session ID/);
        await expect(d.write(id, makeRecord())).rejects.toThrow(/malformed session ID/);
        await expect(d.destroy(id)).rejects.toThrow(/malformed session ID/);
        await expect(d.lock(id, { waitMs: 10, ttlMs: 100 })).rejects.toThrow(/malformed session ID/);
        await expect(d.unlock(id, '1.aaaaaaaaaaaaaaaaaaaaaa')).rejects.toThrow(/malformed session ID/);
      }
      expect(await readdir(outside)).toEqual([]);
    });

    it('a foreign or malformed lock token never becomes a path and owns nothing', async () => {
      const id = newId();
      await driver.write(id, makeRecord({ payload: 'kept' }));
      const token = await driver.lock(id, { waitMs: 500, ttlMs: 10_000 });
      for (const bad of ['../../x', `${token}/..`, '', '9999999999999.' + 'a'.repeat(22)]) {
        await driver.unlock(id, bad);
        await expect(driver.write(id, makeRecord({ payload: 'evil' }), bad)).rejects.toBeInstanceOf(SessionLockException);
      }
      expect((await driver.read(id))!.payload).toBe('kept');
      await expect(driver.lock(id, { waitMs: 50, ttlMs: 1000 })).rejects.toBeInstanceOf(SessionLockException);
      await driver.unlock(id, token);
    });
  });

  describe('atomic writes', () => {
    it('a concurrent reader never sees a torn or missing record', async () => {
      const id = newId();
      const big = (c: string): string => c.repeat(256 * 1024);
      const payloads = [big('a'), big('b'), big('c')];
      await driver.write(id, makeRecord({ payload: payloads[0] }));
      let writing = true;
      const writer = (async () => {
        for (let i = 0; i < 60; i++) await driver.write(id, makeRecord({ payload: payloads[i % 3] }));
        writing = false;
      })();
      let reads = 0;
      while (writing) {
        const r = await driver.read(id);
        expect(r).not.toBeNull();
        expect(payloads).toContain(r!.payload);
        reads++;
      }
      await writer;
      expect(reads).toBeGreaterThan(5);
    });

    it('fenced writes are atomic too, and leave no temp file behind (only the spare, in the holder\'s lease directory)', async () => {
      const id = newId();
      const token = await driver.lock(id, { waitMs: 500, ttlMs: 10_000 });
      await Promise.all([driver.write(id, makeRecord({ payload: 'x' }), token), driver.read(id)]);
      await driver.write(id, makeRecord({ payload: 'y' }), token);
      expect(await readdir(join(root, `${keyOf(id)}.lease`, `held.${token}`))).toEqual([expect.stringMatching(/^spare\.[\w-]+\.[01]$/)]);
      await driver.unlock(id, token);
      expect((await driver.read(id))!.payload).toBe('y');
      const leaseDir = join(root, `${keyOf(id)}.lease`);
      expect(await readdir(join(leaseDir, await freeName(leaseDir)))).toEqual([expect.stringMatching(/^spare\./)]);
    });

    it('a locked write reuses the replaced record\'s file: no file created or freed per write once a session has two versions', async () => {
      const id = newId();
      const file = join(root, `${keyOf(id)}.json`);
      const payloadOf = (i: number): string => `v${i}`.repeat(i % 2 === 0 ? 3000 : 1);
      const commit = async (i: number): Promise<void> => {
        const { token } = await driver.lockAndRead!(id, { waitMs: 500, ttlMs: 10_000 });
        await driver.writeAndUnlock!(id, makeRecord({ payload: payloadOf(i) }), token);
      };
      await commit(0);
      await commit(1);
      // Holding the file open keeps its inode alive, so an equal inode number below really is this file.
      const held = await open(file, 'r');
      const ino = (await held.stat()).ino;
      await commit(2); // the file we hold becomes the spare
      expect((await stat(file)).ino).not.toBe(ino);
      expect((await held.stat()).nlink).toBe(1);
      await commit(3); // and is rewritten and published again
      expect((await stat(file)).ino).toBe(ino);
      const text = await held.readFile({ encoding: 'utf8' });
      await held.close();
      expect(JSON.parse(text).payload).toBe(payloadOf(3));
      // A shorter version written over a longer one leaves nothing of the old one behind.
      expect((await stat(file)).size).toBe(Buffer.byteLength(text));
      expect((await driver.read(id))!.payload).toBe(payloadOf(3));
    });

    it('a reader paused between open and read, while its file becomes the spare and is rewritten by a write that is never committed, reads the committed version', async () => {
      class PausingDriver extends FileDriver {
        gate: Promise<void> | null = null;
        opened: (() => void) | null = null;
        protected override async openUnlocked(path: string): Promise<FileHandle> {
          const handle = await super.openUnlocked(path);
          const gate = this.gate;
          this.gate = null;
          if (gate) {
            this.opened?.();
            await gate;
          }
          return handle;
        }
      }
      const d = new PausingDriver({ path: root });
      const id = newId();
      const commit = async (payload: string): Promise<void> => {
        const token = await d.lock(id, { waitMs: 500, ttlMs: 10_000 });
        await d.write(id, makeRecord({ payload }), token);
        await d.unlock(id, token);
      };
      await commit('v0');
      await commit('v1');
      let resume!: () => void;
      d.gate = new Promise((r) => (resume = r));
      const opened = new Promise<void>((r) => (d.opened = r));
      const reading = d.read(id);
      await opened; // the reader holds the file of v1
      await commit('v2'); // v1's file is now the spare
      // A write that fills the spare and then finds its lease gone: nothing is committed.
      const token = await d.lock(id, { waitMs: 500, ttlMs: 10_000 });
      const uncommitted = makeRecord({ payload: 'never committed' });
      const realNow = Date.now.bind(Date);
      let calls = 0;
      // The lease is valid when the write starts and gone by the time it would rename the spare.
      const spy = jest.spyOn(Date, 'now').mockImplementation(() => realNow() + (++calls > 1 ? 3_600_000 : 0));
      await expect(d.write(id, uncommitted, token)).rejects.toBeInstanceOf(SessionLockException);
      expect(calls).toBe(2);
      spy.mockRestore();
      await d.unlock(id, token);
      resume();
      expect((await reading)!.payload).toBe('v2');
      expect((await d.read(id))!.payload).toBe('v2');
    });

    it('a reader whose file is replaced during every try reads under the lock in the end, never answering "absent"', async () => {
      class Disturbed extends FileDriver {
        opens = 0;
        disturb = 0;
        constructor(path: string, private readonly disturbWith: () => Promise<void>) {
          super({ path });
        }
        protected override async openUnlocked(path: string): Promise<FileHandle> {
          const handle = await super.openUnlocked(path);
          this.opens++;
          // A commit while the reader has the file open: the file it reads is then the spare.
          if (this.disturb-- > 0) await this.disturbWith();
          return handle;
        }
      }
      const id = newId();
      let n = 0;
      const writer = new FileDriver({ path: root });
      const commit = async (): Promise<void> => {
        const { token } = await writer.lockAndRead!(id, { waitMs: 500, ttlMs: 10_000 });
        await writer.writeAndUnlock!(id, makeRecord({ payload: `v${++n}` }), token);
      };
      const d = new Disturbed(root, commit);
      await commit();
      // Disturbed twice: the third try reads the last committed version.
      d.disturb = 2;
      expect((await d.read(id))!.payload).toBe('v3');
      expect(d.opens).toBe(3);
      // Disturbed on every unlocked try: the last read happens under the lock.
      d.opens = 0;
      d.disturb = 5;
      expect((await d.read(id))!.payload).toBe('v8');
      expect(d.opens).toBe(6);
      await freeName(join(root, `${keyOf(id)}.lease`));
    });

    it('a refused write leaves no spare behind: another instance that knew the spare does not publish its leftovers', async () => {
      const a = new FileDriver({ path: root });
      const b = new FileDriver({ path: root });
      const c = new FileDriver({ path: root });
      const id = newId();
      const leaseDir = join(root, `${keyOf(id)}.lease`);
      const opts = { waitMs: 500, ttlMs: 10_000 };
      const commit = async (d: FileDriver, payload: string): Promise<void> => {
        const { token } = await d.lockAndRead!(id, opts);
        await d.writeAndUnlock!(id, makeRecord({ payload }), token);
      };
      for (const p of ['b1', 'b2', 'b3']) await commit(b, p);
      // a overwrites b's spare with a long version, then finds its lease over: refused.
      const { token } = await a.lockAndRead!(id, opts);
      const long = makeRecord({ payload: 'a'.repeat(2000) });
      const realNow = Date.now.bind(Date);
      let calls = 0;
      const spy = jest.spyOn(Date, 'now').mockImplementation(() => realNow() + (++calls > 1 ? 3_600_000 : 0));
      await expect(a.write(id, long, token)).rejects.toBeInstanceOf(SessionLockException);
      spy.mockRestore();
      expect(calls).toBe(2);
      expect(await readdir(join(leaseDir, `held.${token}`))).toEqual([]);
      await a.unlock(id, token);
      // b still knows the last committed version, and its shorter write is whole.
      await commit(b, 'b4');
      expect((await c.read(id))!.payload).toBe('b4');
      expect((await c.lockAndRead!(id, opts)).record!.payload).toBe('b4');
    });

    it('a spare whose length is not known is cut to length (lock + write, then lockAndRead + writeAndUnlock)', async () => {
      const a = new FileDriver({ path: root });
      const b = new FileDriver({ path: root });
      const c = new FileDriver({ path: root });
      const id = newId();
      const opts = { waitMs: 500, ttlMs: 10_000 };
      const commit = async (d: FileDriver, payload: string): Promise<void> => {
        const { token } = await d.lockAndRead!(id, opts);
        await d.writeAndUnlock!(id, makeRecord({ payload }), token);
      };
      for (const p of ['b1', 'b2', 'b3']) await commit(b, p);
      await commit(a, 'a'.repeat(3000));
      const token = await b.lock(id, opts);
      await b.write(id, makeRecord({ payload: 'b-locked' }), token);
      await b.unlock(id, token);
      await commit(b, 'b'.repeat(1000));
      expect((await c.read(id))!.payload).toBe('b'.repeat(1000));
    });

    it('a second name of the session file inside the lease (a revoked holder\'s late link) is never written in place', async () => {
      const id = newId();
      const file = join(root, `${keyOf(id)}.json`);
      const leaseDir = join(root, `${keyOf(id)}.lease`);
      await driver.write(id, makeRecord({ payload: 'live' }));
      await driver.unlock(id, await driver.lock(id, { waitMs: 500, ttlMs: 10_000 }));
      await link(file, join(leaseDir, await freeName(leaseDir), 'spare.revoked-holder.0'));
      const live = await open(file, 'r');
      const other = new FileDriver({ path: root });
      const { token } = await other.lockAndRead!(id, { waitMs: 500, ttlMs: 10_000 });
      await other.writeAndUnlock!(id, makeRecord({ payload: 'next' }), token);
      // The file that was live still holds its version; the new one is another file.
      expect(JSON.parse(await live.readFile({ encoding: 'utf8' })).payload).toBe('live');
      await live.close();
      expect((await driver.read(id))!.payload).toBe('next');
      expect((await readdir(join(leaseDir, await freeName(leaseDir)))).filter((n) => n.startsWith('spare.'))).toHaveLength(1);
    });

    it('reads without the lock never see a reused file half-rewritten or a version that was not committed', async () => {
      // Versions of very different sizes (one page, several pages), so that a reader holding the
      // file of a replaced version while it is rewritten in place would see a mix or a prefix.
      const id = newId();
      const sizes = [10, 5000, 70_000, 300];
      const payloadOf = (i: number): string => `${i}:`.padEnd(sizes[i % sizes.length], String.fromCharCode(97 + (i % 26)));
      await driver.write(id, makeRecord({ payload: payloadOf(0) }));
      let committed = 0;
      let writing = true;
      const writer = (async () => {
        for (let i = 1; i <= 150; i++) {
          const { token } = await driver.lockAndRead!(id, { waitMs: 2000, ttlMs: 10_000 });
          await driver.writeAndUnlock!(id, makeRecord({ payload: payloadOf(i) }), token);
          committed = i;
        }
        writing = false;
      })();
      const reader = async (): Promise<number> => {
        let reads = 0;
        while (writing) {
          const before = committed;
          const r = await driver.read(id);
          expect(r).not.toBeNull();
          const n = Number(r!.payload.slice(0, r!.payload.indexOf(':')));
          expect(r!.payload).toBe(payloadOf(n));
          // Not older than what was committed before the read began; not beyond the one being written.
          expect(n).toBeGreaterThanOrEqual(before);
          expect(n).toBeLessThanOrEqual(committed + 1);
          reads++;
        }
        return reads;
      };
      const reads = await Promise.all([reader(), reader(), reader()]);
      await writer;
      expect(reads.reduce((a, b) => a + b)).toBeGreaterThan(20);
    });

    it('temp files are never seen as sessions and stale ones are removed by gc', async () => {
      const dir = await freshDir();
      const d = new FileDriver({ path: dir });
      await d.open();
      const id = newId();
      await d.write(id, makeRecord({ userId: 'tmp-user' }));
      // What a crash between write and rename leaves behind.
      const fresh = join(dir, '.tmp.crash-fresh');
      const stale = join(dir, '.tmp.crash-stale');
      await writeFile(fresh, JSON.stringify({ v: 1, id, evictAt: 0 }));
      await writeFile(stale, 'half a reco');
      const old = new Date(Date.now() - 3_600_000);
      await utimes(stale, old, old);
      // Lock directories of the previous lock protocol (a rolling upgrade): removed once idle that long.
      const legacyFresh = `${keyOf(newId())}.lock`;
      const legacyStale = `${keyOf(id)}.lock`;
      await mkdir(join(dir, legacyFresh, 'hold.x'), { recursive: true });
      await mkdir(join(dir, legacyStale, 'hold.y'), { recursive: true });
      await utimes(join(dir, legacyStale), old, old);
      expect((await d.listByUser('tmp-user')).map((s) => s.id)).toEqual([id]);
      expect(await d.gc()).toBe(0);
      const names = await readdir(dir);
      expect(names).toContain('.tmp.crash-fresh');
      expect(names).not.toContain('.tmp.crash-stale');
      expect(names).toContain(legacyFresh);
      expect(names).not.toContain(legacyStale);
      expect(await d.read(id)).not.toBeNull();
      await d.close();
    });
  });

  describe('corrupt and foreign content', () => {
    it('unreadable content reads as absent, is skipped by scans and deleted (and counted) by gc', async () => {
      const dir = await freshDir();
      const d = new FileDriver({ path: dir });
      await d.open();
      const ids = [newId(), newId(), newId(), newId()];
      const bodies = [
        'not json at all',
        JSON.stringify({ v: 1, id: ids[1], evictAt: Date.now() + 60_000, meta: { createdAt: 'yesterday' }, payload: 'p' }),
        // A valid envelope of another ID copied under this name: never served for the wrong ID.
        JSON.stringify({ v: 1, id: ids[0], evictAt: Date.now() + 60_000, meta: makeRecord({ userId: 'u' }).meta, payload: 'p' }),
        '',
      ];
      for (let i = 0; i < ids.length; i++) await writeFile(join(dir, `${keyOf(ids[i])}.json`), bodies[i], { mode: 0o600 });
      for (const id of ids) expect(await d.read(id)).toBeNull();
      expect(await d.listByUser('u')).toEqual([]);
      expect(await d.destroyByUser('u')).toBe(0);
      expect(await d.gc()).toBe(ids.length);
      expect((await readdir(dir)).filter((n) => n.endsWith('.json'))).toEqual([]);
      await d.close();
    });

    it('a record whose checksum does not match reads as absent (locked or not) and is deleted by gc; a v1 file (no checksum) is read', async () => {
      const dir = await freshDir();
      const d = new FileDriver({ path: dir });
      await d.open();
      const damaged = newId();
      await d.write(damaged, makeRecord({ payload: 'intact', userId: 'sum-user' }));
      const file = join(dir, `${keyOf(damaged)}.json`);
      // One byte of the payload changed on disk (a torn write after a power cut, a bad sector).
      await writeFile(file, (await readFile(file, 'utf8')).replace('"intact"', '"intacT"'), { mode: 0o600 });
      expect(await d.read(damaged)).toBeNull();
      const { token, record } = await d.lockAndRead!(damaged, { waitMs: 500, ttlMs: 10_000 });
      expect(record).toBeNull();
      await d.unlock(damaged, token);
      expect(await d.listByUser('sum-user')).toEqual([]);
      // Written by the release before checksums: the same envelope with v 1 and no "c".
      const legacy = newId();
      const meta = makeRecord({ userId: 'sum-user' }).meta;
      await writeFile(join(dir, `${keyOf(legacy)}.json`), JSON.stringify({ v: 1, id: legacy, evictAt: Date.now() + 60_000, meta, payload: 'old' }), { mode: 0o600 });
      expect((await d.read(legacy))!.payload).toBe('old');
      expect((await d.listByUser('sum-user')).map((s) => s.id)).toEqual([legacy]);
      // A v2 envelope without its checksum is not accepted as whole.
      const unsealed = newId();
      await writeFile(join(dir, `${keyOf(unsealed)}.json`), JSON.stringify({ v: 2, id: unsealed, evictAt: Date.now() + 60_000, meta, payload: 'p' }), { mode: 0o600 });
      expect(await d.read(unsealed)).toBeNull();
      expect(await d.gc()).toBe(2);
      expect((await d.read(legacy))!.payload).toBe('old');
      await d.close();
    });

    it('a file of a newer format version is an error, never absent, and gc leaves it alone', async () => {
      const dir = await freshDir();
      const d = new FileDriver({ path: dir });
      await d.open();
      const id = newId();
      const file = join(dir, `${keyOf(id)}.json`);
      await writeFile(file, JSON.stringify({ v: 3, id, somethingNew: true }), { mode: 0o600 });
      await expect(d.read(id)).rejects.toThrow(/storage format v3/);
      await expect(d.read(id)).rejects.toBeInstanceOf(SessionException);
      // lockAndRead does not keep the lock when the read fails.
      await expect(d.lockAndRead!(id, { waitMs: 100, ttlMs: 10_000 })).rejects.toThrow(/storage format v3/);
      await d.unlock(id, await d.lock(id, { waitMs: 0, ttlMs: 10_000 }));
      expect(await d.gc()).toBe(0);
      await expect(stat(file)).resolves.toBeDefined();
      await d.close();
    });

    it('a read failure is a store error (503), never "absent"', async () => {
      const dir = await freshDir();
      const d = new FileDriver({ path: dir });
      await d.open();
      const id = newId();
      await mkdir(join(dir, `${keyOf(id)}.json`)); // EISDIR on read
      const err = await d.read(id).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(SessionException);
      expect((err as SessionException).getStatus()).toBe(503);
      expect((err as Error).message).not.toContain(id);
      await d.close();
    });

    it('refuses to store a malformed record', async () => {
      const bad = { ...makeRecord(), evictAt: Number.NaN };
      await expect(driver.write(newId(), bad)).rejects.toThrow(/malformed session record/);
    });
  });

  describe('locking', () => {
    it.each([false, true])('two drivers on one directory (as two processes would) exclude each other and lose no update (lockAndRead/writeAndUnlock: %s)', async (combined) => {
      const other = new FileDriver({ path: root });
      await other.open();
      const id = newId();
      const drivers = [driver, other, driver, other];
      let inside = 0;
      let maxInside = 0;
      await Promise.all(
        drivers.map(async (d) => {
          for (let i = 0; i < 10; i++) {
            const lockOptions = { waitMs: 10_000, ttlMs: 5000 };
            const { token, record: r } = combined ? await d.lockAndRead!(id, lockOptions) : { token: await d.lock(id, lockOptions), record: null };
            inside++;
            maxInside = Math.max(maxInside, inside);
            const n = Number((combined ? r : await d.read(id))?.payload ?? 0);
            await sleep(1);
            const next = makeRecord({ payload: String(n + 1) });
            // Nobody can get in before the release, which comes after the write.
            inside--;
            if (combined) {
              await d.writeAndUnlock!(id, next, token);
            } else {
              await d.write(id, next, token);
              await d.unlock(id, token);
            }
          }
        }),
      );
      expect(maxInside).toBe(1);
      expect((await driver.read(id))!.payload).toBe('40');
      await other.close();
    });

    it('many contenders racing to take over one expired lock: exactly one wins', async () => {
      const id = newId();
      await driver.write(id, makeRecord({ payload: 'base' }));
      await driver.lock(id, { waitMs: 100, ttlMs: 150 }); // dies
      const contenders = Array.from({ length: 8 }, () => new FileDriver({ path: root }));
      await Promise.all(contenders.map((c) => c.open()));
      await sleep(150);
      const results = await Promise.allSettled(contenders.map((c) => c.lock(id, { waitMs: 300, ttlMs: 5000 })));
      const winners = results.filter((r) => r.status === 'fulfilled') as PromiseFulfilledResult<string>[];
      expect(winners).toHaveLength(1);
      for (const r of results) if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(SessionLockException);
      await driver.unlock(id, winners[0].value);
      await Promise.all(contenders.map((c) => c.close()));
    });

    it('fencing holds without clocks: a holder paused past a takeover cannot commit even if its clock says the lease is valid', async () => {
      const id = newId();
      await driver.write(id, makeRecord({ payload: 'original' }));
      const slow = await driver.lock(id, { waitMs: 500, ttlMs: 10_000 });
      // The successor's clock runs 20 s ahead (a clock jump, or simply a holder paused by GC / SIGSTOP):
      // it sees the lease as expired and takes over.
      const realNow = Date.now.bind(Date);
      const spy = jest.spyOn(Date, 'now').mockImplementation(() => realNow() + 20_000);
      const successor = await driver.lock(id, { waitMs: 500, ttlMs: 30_000 });
      spy.mockRestore();
      // By the slow holder's own clock its lease is still valid, yet the takeover revoked it.
      await expect(driver.write(id, makeRecord({ payload: 'lost update' }), slow)).rejects.toBeInstanceOf(SessionLockException);
      await driver.unlock(id, slow);
      await driver.write(id, makeRecord({ payload: 'successor' }), successor);
      expect((await driver.read(id))!.payload).toBe('successor');
      await driver.unlock(id, successor);
    });

    it('a write of the old holder that raced the takeover either lands before the successor reads, or fails', async () => {
      for (let round = 0; round < 10; round++) {
        const id = newId();
        await driver.write(id, makeRecord({ payload: 'v0' }));
        const old = await driver.lock(id, { waitMs: 500, ttlMs: 10_000 });
        const realNow = Date.now.bind(Date);
        const oldWrite = driver.write(id, makeRecord({ payload: 'old' }), old).then(
          () => 'ok',
          (e: unknown) => (e instanceof SessionLockException ? 'refused' : 'error'),
        );
        const spy = jest.spyOn(Date, 'now').mockImplementation(() => realNow() + 20_000);
        const fresh = await driver.lock(id, { waitMs: 500, ttlMs: 60_000 });
        spy.mockRestore();
        const seen = (await driver.read(id))!.payload;
        const outcome = await oldWrite;
        expect(outcome).not.toBe('error');
        // Whatever the interleaving, the successor's read already reflects every commit of the old holder.
        expect(seen).toBe(outcome === 'ok' ? 'old' : 'v0');
        expect((await driver.read(id))!.payload).toBe(seen);
        await driver.unlock(id, fresh);
      }
    });

    it('what an instance remembers of its last commit is used only while nothing else changed the session', async () => {
      // Two drivers on one directory, as two processes would be.
      const a = new FileDriver({ path: root });
      const b = new FileDriver({ path: root });
      const id = newId();
      const opts = { waitMs: 500, ttlMs: 10_000 };
      const commit = async (d: FileDriver, payload: string): Promise<string | undefined> => {
        const { token, record } = await d.lockAndRead!(id, opts);
        await d.writeAndUnlock!(id, makeRecord({ payload }), token);
        return record?.payload;
      };
      const c = new FileDriver({ path: root });
      // Enough commits for a to keep both files open (the spare's and the record's descriptors).
      for (const p of ['a0', 'a1', 'a2', 'a3']) await commit(a, p);
      await commit(a, 'a2'); // a now remembers a2
      expect(await commit(b, 'b1')).toBe('a2');
      expect(await commit(a, 'a3')).toBe('b1'); // not the remembered a2
      // Alternating: neither instance writes through a descriptor of a file the other has reused.
      for (let i = 0; i < 4; i++) {
        expect(await commit(b, `b-${i}`)).toBe(i === 0 ? 'a3' : `a-${i - 1}`);
        expect((await c.read(id))!.payload).toBe(`b-${i}`);
        expect(await commit(a, `a-${i}`)).toBe(`b-${i}`);
        expect((await c.read(id))!.payload).toBe(`a-${i}`);
      }
      await commit(a, 'a3');
      // Locking and releasing without a write leaves the session, and what a remembers, as it was.
      await b.unlock(id, (await b.lockAndRead!(id, opts)).token);
      expect(await commit(a, 'a4')).toBe('a3');
      // A write without the lock (locking disabled elsewhere) is seen too.
      await b.write(id, makeRecord({ payload: 'unlocked' }));
      expect(await commit(a, 'a5')).toBe('unlocked');
      // And so is a destroy.
      await b.destroy(id);
      const { token, record } = await a.lockAndRead!(id, opts);
      expect(record).toBeNull();
      await a.unlock(id, token);
    });

    it('a session keeps at most two descriptors open (its spare\'s and its record\'s), through releases without a write; close() closes them', async () => {
      const base = await openFds();
      const d = new FileDriver({ path: root });
      const id = newId();
      const opts = { waitMs: 500, ttlMs: 10_000 };
      await commitEach(d, id, ['v1', 'v2', 'v3', 'v4']);
      await eventually(async () => (await openFds()) === base + 2);
      for (let i = 0; i < 20; i++) {
        const { token, record } = await d.lockAndRead!(id, opts);
        expect(record!.payload).toBe('v4');
        await d.unlock(id, token);
      }
      await eventually(async () => (await openFds()) === base + 2);
      const { token } = await d.lockAndRead!(id, opts);
      await d.writeAndUnlock!(id, makeRecord({ payload: 'v5' }), token);
      await eventually(async () => (await openFds()) === base + 2);
      await d.lockAndRead!(id, opts); // held, not released
      await d.close();
      await eventually(async () => (await openFds()) === base);
      // Another instance (a destroy, here) leaves an instance's memory void: its descriptors go.
      const e = new FileDriver({ path: root });
      const other = newId();
      await commitEach(e, other, ['w1', 'w2', 'w3', 'w4']);
      await eventually(async () => (await openFds()) === base + 2);
      await e.destroy(other);
      await eventually(async () => (await openFds()) === base);
    });

    it('descriptors are kept for at most 256 files across sessions; the others are opened when needed', async () => {
      const base = await openFds();
      const d = new FileDriver({ path: root });
      const ids = Array.from({ length: 200 }, () => newId());
      const opts = { waitMs: 500, ttlMs: 10_000 };
      // Four commits each: from the third one on, a session keeps its two files open.
      for (let round = 0; round < 4; round++) {
        for (const id of ids) {
          const { token } = await d.lockAndRead!(id, opts);
          await d.writeAndUnlock!(id, makeRecord({ payload: `${round}` }), token);
        }
      }
      const held = (await openFds()) - base;
      expect(held).toBeGreaterThan(0);
      expect(held).toBeLessThanOrEqual(256);
      // Sessions busy now take the descriptors of those committed longest ago.
      const busy = Array.from({ length: 10 }, () => newId());
      for (let round = 0; round < 4; round++) {
        for (const id of busy) {
          const { token } = await d.lockAndRead!(id, opts);
          await d.writeAndUnlock!(id, makeRecord({ payload: `busy ${round}` }), token);
        }
      }
      expect((await openFds()) - base).toBeLessThanOrEqual(256);
      const openFiles = new Set(await Promise.all((await readdir('/proc/self/fd')).map((fd) => readlink(`/proc/self/fd/${fd}`).catch(() => ''))));
      for (const id of busy) expect(openFiles.has(join(root, `${keyOf(id)}.json`))).toBe(true);
      for (const id of ids.slice(0, 20)) {
        const { token, record } = await d.lockAndRead!(id, opts);
        expect(record!.payload).toBe('3');
        await d.writeAndUnlock!(id, makeRecord({ payload: 'last' }), token);
        expect((await driver.read(id))!.payload).toBe('last');
      }
      await d.close();
      await eventually(async () => (await openFds()) === base);
    });

    it('a session file replaced behind the lease (a file restored by hand, an unlocked writer that died before its second revoke) loses no later commit', async () => {
      const a = new FileDriver({ path: root });
      const c = new FileDriver({ path: root });
      const id = newId();
      const opts = { waitMs: 500, ttlMs: 10_000 };
      const commit = async (p: string): Promise<void> => {
        const { token } = await a.lockAndRead!(id, opts);
        await a.writeAndUnlock!(id, makeRecord({ payload: p }), token);
      };
      for (const p of ['v0', 'v1', 'v2', 'v3']) await commit(p); // a keeps both files open
      // A valid, longer file for the same ID, renamed over the record without the lease.
      const side = join(await freshDir(), 'side');
      const other = new FileDriver({ path: side });
      await other.write(id, makeRecord({ payload: 'restored-and-longer-than-any-of-these' }));
      await rename(join(side, `${keyOf(id)}.json`), join(root, `${keyOf(id)}.json`));
      const seen: string[] = [];
      for (const p of ['w1', 'w2', 'w3', 'w4']) {
        await commit(p);
        seen.push((await c.read(id))!.payload);
      }
      expect(seen).toEqual(['w1', 'w2', 'w3', 'w4']);
    });

    it('a session file replaced behind the lease right after a commit that kept no descriptor is never published with the replacement\'s tail', async () => {
      const a = new FileDriver({ path: root });
      const c = new FileDriver({ path: root });
      const id = newId();
      await commitEach(a, id, ['v0', 'v1']); // a remembers v1 but holds no descriptor of it yet
      const side = join(await freshDir(), 'side');
      await new FileDriver({ path: side }).write(id, makeRecord({ payload: 'restored-and-much-longer-than-any-of-the-others' }));
      await rename(join(side, `${keyOf(id)}.json`), join(root, `${keyOf(id)}.json`));
      const seen: (string | null)[] = [];
      for (const p of ['w1', 'w2xxxx', 'w3']) {
        await commitEach(a, id, [p]);
        seen.push((await c.read(id))?.payload ?? null);
      }
      expect(seen).toEqual(['w1', 'w2xxxx', 'w3']);
    });

    it('a remembered spare that cannot be opened (an error other than ENOENT) fails with the store\'s own message and releases the lock', async () => {
      const dir = await freshDir();
      const d = new FileDriver({ path: dir });
      const ids = Array.from({ length: 140 }, () => newId());
      const opts = { waitMs: 500, ttlMs: 10_000 };
      // Three commits each: the first sessions give their descriptors up to the later ones, so
      // the next lock of ids[0] opens its remembered spare by name.
      for (const id of ids) await commitEach(d, id, ['0', '1', '2']);
      const leaseDir = join(dir, `${keyOf(ids[0])}.lease`);
      const free = join(leaseDir, await freeName(leaseDir));
      const [spare] = await readdir(free);
      await rm(join(free, spare));
      await mkdir(join(free, spare)); // opening it for writing now fails with EISDIR
      const failure = await d.lockAndRead!(ids[0], opts).then(
        () => null,
        (err: unknown) => err,
      );
      expect(failure).toBeInstanceOf(SessionStoreUnavailableException);
      expect((failure as Error).message).toMatch(/could not read a session \(EISDIR\); check that .+ exists and is writable/);
      // The lock is free again: another instance takes it at once and reads the committed record.
      const other = new FileDriver({ path: dir });
      const { token, record } = await other.lockAndRead!(ids[0], { waitMs: 0, ttlMs: 10_000 });
      expect(record!.payload).toBe('2');
      await other.unlock(ids[0], token);
      await Promise.all([d.close(), other.close()]);
    });

    it('an instance holding descriptors that locks with lock() after another instance committed writes by name, not through them', async () => {
      const a = new FileDriver({ path: root });
      const b = new FileDriver({ path: root });
      const c = new FileDriver({ path: root });
      const id = newId();
      const opts = { waitMs: 500, ttlMs: 10_000 };
      await commitEach(a, id, ['a0', 'a1', 'a2', 'a3']);
      const taken = await b.lockAndRead!(id, opts);
      await b.writeAndUnlock!(id, makeRecord({ payload: 'b1' }), taken.token);
      const token = await a.lock(id, opts);
      await a.write(id, makeRecord({ payload: 'a-locked' }), token);
      await a.unlock(id, token);
      expect((await c.read(id))!.payload).toBe('a-locked');
      const again = await b.lockAndRead!(id, opts);
      expect(again.record!.payload).toBe('a-locked');
      await b.writeAndUnlock!(id, makeRecord({ payload: 'b2' }), again.token);
      expect((await c.read(id))!.payload).toBe('b2');
    });

    it('close() while a commit is in flight leaves no descriptor open once it settles', async () => {
      const base = await openFds();
      const d = new FileDriver({ path: root });
      const id = newId();
      const opts = { waitMs: 500, ttlMs: 10_000 };
      await commitEach(d, id, ['v1', 'v2', 'v3', 'v4']);
      const { token } = await d.lockAndRead!(id, opts);
      const pending = d.writeAndUnlock!(id, makeRecord({ payload: 'v5' }), token);
      await d.close();
      await pending;
      await eventually(async () => (await openFds()) === base);
      expect((await driver.read(id))!.payload).toBe('v5');
    });

    it('a holder that read from memory and was then taken over cannot write through the spare it opened', async () => {
      const a = new FileDriver({ path: root });
      const b = new FileDriver({ path: root });
      const id = newId();
      const opts = { waitMs: 500, ttlMs: 10_000 };
      await commitEach(a, id, ['a0', 'a1', 'a1', 'a2']);
      const slow = await a.lockAndRead!(id, { waitMs: 500, ttlMs: 150 });
      expect(slow.record!.payload).toBe('a2');
      await sleep(200);
      const { token, record } = await b.lockAndRead!(id, opts);
      expect(record!.payload).toBe('a2');
      await b.writeAndUnlock!(id, makeRecord({ payload: 'b1' }), token);
      await expect(a.writeAndUnlock!(id, makeRecord({ payload: 'late' }), slow.token)).rejects.toBeInstanceOf(SessionLockException);
      expect((await b.read(id))!.payload).toBe('b1');
      expect((await b.lockAndRead!(id, opts)).record!.payload).toBe('b1');
    });

    it('waiters of one process are served in arrival order', async () => {
      const id = newId();
      const first = await driver.lock(id, { waitMs: 500, ttlMs: 10_000 });
      const order: number[] = [];
      const waiting = Array.from({ length: 20 }, (_, i) =>
        driver.lock(id, { waitMs: 10_000, ttlMs: 10_000 }).then(async (token) => {
          order.push(i);
          await sleep(1);
          await driver.unlock(id, token);
        }),
      );
      await sleep(20);
      await driver.unlock(id, first);
      await Promise.all(waiting);
      expect(order).toEqual(Array.from({ length: 20 }, (_, i) => i));
    });

    it('a waiter queued behind others still gives up at its own deadline', async () => {
      const id = newId();
      const token = await driver.lock(id, { waitMs: 500, ttlMs: 10_000 });
      const patient = driver.lock(id, { waitMs: 3000, ttlMs: 10_000 });
      const started = Date.now();
      await expect(driver.lock(id, { waitMs: 200, ttlMs: 10_000 })).rejects.toBeInstanceOf(SessionLockException);
      expect(Date.now() - started).toBeGreaterThanOrEqual(180);
      expect(Date.now() - started).toBeLessThan(1000);
      await driver.unlock(id, token);
      await driver.unlock(id, await patient);
    });

    it('waitMs 0 is a single try', async () => {
      const id = newId();
      const token = await driver.lock(id, { waitMs: 0, ttlMs: 10_000 });
      const started = Date.now();
      await expect(driver.lock(id, { waitMs: 0, ttlMs: 10_000 })).rejects.toBeInstanceOf(SessionLockException);
      expect(Date.now() - started).toBeLessThan(1000); // a single try, not a wait (generous for loaded CI machines)
      await driver.unlock(id, token);
    });

    it('a lock on an ID without a record leaves no directory behind once released', async () => {
      const id = newId();
      const token = await driver.lock(id, { waitMs: 500, ttlMs: 10_000 });
      expect(await readdir(root)).toContain(`${keyOf(id)}.lease`);
      await driver.unlock(id, token);
      expect(await readdir(root)).not.toContain(`${keyOf(id)}.lease`);
    });

    it('a live session keeps a single lease entry however often it is locked', async () => {
      const id = newId();
      await driver.write(id, makeRecord());
      for (let i = 0; i < 20; i++) {
        const token = await driver.lock(id, { waitMs: 500, ttlMs: 10_000 });
        await driver.unlock(id, token);
      }
      await freeName(join(root, `${keyOf(id)}.lease`));
    });

    it('writeAndUnlock commits and releases; a lease directory emptied by a crash mid-release does not block', async () => {
      const id = newId();
      const { token, record } = await driver.lockAndRead!(id, { waitMs: 500, ttlMs: 10_000 });
      expect(record).toBeNull();
      await driver.writeAndUnlock!(id, makeRecord({ payload: 'one' }), token);
      const leaseDir = join(root, `${keyOf(id)}.lease`);
      const released = await freeName(leaseDir);
      expect((await driver.read(id))!.payload).toBe('one');
      // A process killed between moving its lease out and removing the directory.
      await rm(join(leaseDir, released), { recursive: true });
      const again = await driver.lock(id, { waitMs: 500, ttlMs: 10_000 });
      await driver.unlock(id, again);
      // A directory with foreign content and no lease (made by hand) is moved away, not waited on forever.
      await rm(join(leaseDir, await freeName(leaseDir)), { recursive: true });
      await writeFile(join(leaseDir, 'junk'), 'x');
      const third = await driver.lock(id, { waitMs: 500, ttlMs: 10_000 });
      expect(await readdir(leaseDir)).toEqual([`held.${third}`]);
      await driver.unlock(id, third);
    });

    it('a takeover drops the temp files of the expired holder\'s unfinished write', async () => {
      const id = newId();
      await driver.write(id, makeRecord({ payload: 'before' }));
      const dead = await driver.lock(id, { waitMs: 500, ttlMs: 100 });
      const leaseDir = join(root, `${keyOf(id)}.lease`);
      await writeFile(join(leaseDir, `held.${dead}`, 'w.unfinished.tmp'), 'partial');
      await sleep(150);
      const token = await driver.lock(id, { waitMs: 500, ttlMs: 10_000 });
      expect(await readdir(join(leaseDir, `held.${token}`))).toEqual([]);
      await expect(driver.write(id, makeRecord({ payload: 'stale' }), dead)).rejects.toBeInstanceOf(SessionLockException);
      await driver.unlock(id, token);
      expect((await driver.read(id))!.payload).toBe('before');
    });

    it('a takeover drops the expired holder\'s spare: a write it still makes through an open descriptor reaches no session', async () => {
      const id = newId();
      const leaseDir = join(root, `${keyOf(id)}.lease`);
      await driver.write(id, makeRecord({ payload: 'v0' }));
      const dead = await driver.lock(id, { waitMs: 500, ttlMs: 150 });
      await driver.write(id, makeRecord({ payload: 'v1' }), dead);
      const spares = await readdir(join(leaseDir, `held.${dead}`));
      expect(spares).toEqual([expect.stringMatching(/^spare\./)]);
      // The holder is paused with its spare open for writing (between open() and write()).
      const paused = await open(join(leaseDir, `held.${dead}`, spares[0]), 'r+');
      await sleep(200);
      const token = await driver.lock(id, { waitMs: 500, ttlMs: 10_000 });
      expect(await readdir(join(leaseDir, `held.${token}`))).toEqual([]);
      await driver.write(id, makeRecord({ payload: 'successor-1' }), token);
      await driver.write(id, makeRecord({ payload: 'successor-2' }), token);
      // The paused holder wakes up and writes.
      await paused.write('garbage from a revoked holder', 0);
      await paused.close();
      await driver.write(id, makeRecord({ payload: 'successor-3' }), token);
      await driver.unlock(id, token);
      expect((await driver.read(id))!.payload).toBe('successor-3');
    });

    it('close() stops a waiting lock', async () => {
      const d = new FileDriver({ path: root });
      await d.open();
      const id = newId();
      const token = await driver.lock(id, { waitMs: 500, ttlMs: 10_000 });
      const waiting = d.lock(id, { waitMs: 10_000, ttlMs: 10_000 });
      await sleep(30);
      await d.close();
      await expect(waiting).rejects.toThrow(/closed/);
      await driver.unlock(id, token);
    });
  });

  describe('destroy', () => {
    it('a holder committing in a loop while the session is destroyed never brings it back', async () => {
      for (let round = 0; round < 10; round++) {
        const id = newId();
        await driver.write(id, makeRecord({ payload: 'live' }));
        const token = await driver.lock(id, { waitMs: 500, ttlMs: 10_000 });
        let commits = 0;
        const holder = (async () => {
          for (;;) {
            try {
              await driver.write(id, makeRecord({ payload: `commit-${commits}` }), token);
              commits++;
            } catch (err) {
              expect(err).toBeInstanceOf(SessionLockException);
              return;
            }
          }
        })();
        await sleep(round % 3);
        await driver.destroy(id);
        await holder;
        expect(await driver.read(id)).toBeNull();
        await driver.unlock(id, token); // a no-op: destroy voided it
        const next = await driver.lock(id, { waitMs: 0, ttlMs: 1000 });
        await driver.unlock(id, next);
        expect(await readdir(root)).not.toContain(`${keyOf(id)}.json`);
      }
    });

    it('leaves no lock directory behind', async () => {
      const id = newId();
      await driver.write(id, makeRecord());
      await driver.lock(id, { waitMs: 500, ttlMs: 10_000 });
      await driver.destroy(id);
      expect((await readdir(root)).filter((n) => n.startsWith(keyOf(id)))).toEqual([]);
    });
  });

  describe('gc', () => {
    it('removes expired records in batches across many files, and lock directories of dead sessions', async () => {
      const dir = await freshDir();
      const d = new FileDriver({ path: dir });
      await d.open();
      const dead = Array.from({ length: 300 }, () => newId());
      const live = Array.from({ length: 20 }, () => newId());
      await Promise.all(dead.map((id) => d.write(id, makeRecord({ ttlMs: 50 }))));
      await Promise.all(live.map((id) => d.write(id, makeRecord({ ttlMs: 60_000 }))));
      // A crashed holder on a dead session, and one on a live session.
      await d.lock(dead[0], { waitMs: 100, ttlMs: 50 });
      await d.lock(live[0], { waitMs: 100, ttlMs: 50 });
      const heldLive = await d.lock(live[1], { waitMs: 100, ttlMs: 60_000 });
      await sleep(120);
      expect(await d.gc()).toBe(dead.length);
      const names = await readdir(dir);
      expect(names.filter((n) => n.endsWith('.json'))).toHaveLength(live.length);
      expect(names).not.toContain(`${keyOf(dead[0])}.lease`);
      expect(names).toContain(`${keyOf(live[1])}.lease`);
      expect(names).toContain(`${keyOf(live[0])}.lease`); // a live session keeps its lease even when its holder crashed
      for (const id of live) expect(await d.read(id)).not.toBeNull();
      expect(await d.gc()).toBe(0);
      // The live session's crashed lock is simply taken over; the held one still excludes.
      const t = await d.lock(live[0], { waitMs: 100, ttlMs: 1000 });
      await d.unlock(live[0], t);
      await expect(d.lock(live[1], { waitMs: 50, ttlMs: 1000 })).rejects.toBeInstanceOf(SessionLockException);
      await d.unlock(live[1], heldLive);
      await d.close();
    });

    it('never deletes a record whose lock is held: the holder read it while alive and may still refresh it', async () => {
      const dir = await freshDir();
      const d = new FileDriver({ path: dir });
      await d.open();
      const id = newId();
      await d.write(id, makeRecord({ ttlMs: 20 }));
      const token = await d.lock(id, { waitMs: 100, ttlMs: 10_000 });
      await sleep(40);
      const [removed] = await Promise.all([d.gc(), d.write(id, makeRecord({ payload: 'refreshed', ttlMs: 60_000 }), token)]);
      expect(removed).toBe(0);
      expect((await d.read(id))!.payload).toBe('refreshed');
      await d.unlock(id, token);
      // Unlocked and expired: now it goes.
      await d.write(id, makeRecord({ ttlMs: 10 }));
      await sleep(30);
      expect(await d.gc()).toBe(1);
      expect(await readdir(dir)).toEqual([]);
      await d.close();
    });

    it('concurrent gc passes (several processes) delete each record once', async () => {
      const dir = await freshDir();
      const drivers = Array.from({ length: 3 }, () => new FileDriver({ path: dir }));
      await Promise.all(drivers.map((d) => d.open()));
      const ids = Array.from({ length: 60 }, () => newId());
      await Promise.all(ids.map((id) => drivers[0].write(id, makeRecord({ ttlMs: 10 }))));
      await sleep(30);
      const counts = await Promise.all(drivers.map((d) => d.gc()));
      expect(counts.reduce((a, b) => a + b, 0)).toBe(ids.length);
      expect(await readdir(dir)).toEqual([]);
      await Promise.all(drivers.map((d) => d.close()));
    });
  });

  describe('listByUser / destroyByUser', () => {
    it('excludes expired sessions from the list and skips temp and lock entries', async () => {
      const dir = await freshDir();
      const d = new FileDriver({ path: dir });
      await d.open();
      const live = newId();
      const expired = newId();
      await d.write(live, makeRecord({ userId: 'alice' }));
      await d.write(expired, makeRecord({ userId: 'alice', ttlMs: 10 }));
      const token = await d.lock(live, { waitMs: 100, ttlMs: 10_000 });
      await sleep(30);
      const list = await d.listByUser('alice');
      expect(list.map((s) => s.id)).toEqual([live]);
      expect(list[0].meta.userAgent).toBe('jest-agent/1.0');
      await d.unlock(live, token);
      expect(await d.destroyByUser('alice', live)).toBe(1); // the expired one
      expect(await d.destroyByUser('nobody')).toBe(0);
      await d.close();
    });
  });
});
