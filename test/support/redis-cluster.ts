/**
 * Throw-away Redis servers and clusters for tests, started from the installed `redis-server` binary
 * on free ports in a temp dir (no persistence), so test files can run in parallel. Every process
 * started here is stopped by `stop()`, and killed at the latest when the test process exits.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);
const HOST = '127.0.0.1';
const live = new Set<ChildProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // Last line of defence when a test crashes before its afterAll: never leave a server behind.
  process.once('exit', () => {
    for (const child of live) {
      try {
        child.kill('SIGCONT');
        child.kill('SIGKILL');
      } catch {
        /* already gone */
      }
    }
  });
}

/** A port nobody listens on right now (the OS picks it); callers retry if it is taken before use. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, HOST, () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export interface RedisServerHandle {
  readonly host: string;
  readonly port: number;
  readonly dir: string;
  readonly url: string;
  /** The server process id (for SIGSTOP-style tests). */
  readonly pid: number;
  /** SIGSTOP: the server keeps its sockets open but answers nothing (a hung server). */
  pause(): void;
  /** SIGCONT after `pause()`. */
  resume(): void;
  /** SIGTERM (no save is configured), SIGKILL after 5 s; resolves once the process has exited. */
  stop(): Promise<void>;
}

export interface StartRedisOptions {
  /** A fixed port (e.g. to restart a stopped server on the same port); default: a free one. */
  port?: number;
  /** Reuse a directory; default: a fresh temp dir, removed by `stop()`. */
  dir?: string;
  /** Start as a Cluster node (its bus port is chosen free too). */
  clusterNode?: boolean;
  /** Start a Sentinel (not a data server) that monitors this master under `name`. */
  sentinelFor?: { name: string; host: string; port: number };
  /** Extra `redis-server` arguments. */
  args?: string[];
}

/** Starts one `redis-server` and resolves when it accepts connections. */
export async function startRedisServer(options: StartRedisOptions = {}): Promise<RedisServerHandle> {
  installExitHook();
  let lastError: unknown;
  // A free port can be taken between the probe and redis binding it: retry with fresh ones.
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = options.port ?? (await freePort());
    try {
      return await spawnServer(port, options);
    } catch (err) {
      lastError = err;
      if (options.port !== undefined && attempt >= 2) break;
      if (options.port !== undefined) await new Promise((r) => setTimeout(r, 200));
    }
  }
  throw lastError;
}

async function spawnServer(port: number, options: StartRedisOptions): Promise<RedisServerHandle> {
  const ownDir = options.dir === undefined;
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'ml-sess-redis-'));
  let args = ['--port', String(port), '--bind', HOST, '--save', '', '--appendonly', 'no', '--dir', dir, '--daemonize', 'no', '--loglevel', 'notice'];
  let readyLine = 'Ready to accept connections';
  if (options.sentinelFor) {
    // Sentinel insists on a config file it can rewrite.
    const { name, host, port: masterPort } = options.sentinelFor;
    const conf = join(dir, `sentinel-${port}.conf`);
    writeFileSync(conf, `sentinel monitor ${name} ${host} ${masterPort} 1\nsentinel down-after-milliseconds ${name} 1000\n`);
    args = [conf, '--sentinel', '--port', String(port), '--bind', HOST, '--dir', dir, '--daemonize', 'no'];
    readyLine = '+monitor master';
  }
  if (options.clusterNode) {
    const busPort = await freePort();
    args.push('--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${port}.conf`, '--cluster-port', String(busPort), '--cluster-node-timeout', '5000');
  }
  args.push(...(options.args ?? []));
  const child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(child);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  void exited.then(() => live.delete(child));
  let log = '';
  const onData = (d: Buffer): void => {
    if (log.length < 20_000) log += d.toString();
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);

  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => fail(new Error(`redis-server on port ${port} did not start within 10 s:\n${log}`)), 10_000);
    const check = (): void => {
      if (log.includes(readyLine)) {
        cleanup();
        resolve();
      }
    };
    const onExit = (): void => fail(new Error(`redis-server on port ${port} exited at start-up:\n${log}`));
    function fail(err: Error): void {
      cleanup();
      child.kill('SIGKILL');
      if (ownDir) rmSync(dir, { recursive: true, force: true });
      reject(err);
    }
    function cleanup(): void {
      clearTimeout(timer);
      child.stdout!.off('data', check);
      child.off('exit', onExit);
    }
    child.stdout!.on('data', check);
    child.once('exit', onExit);
    check();
  });

  let stopping: Promise<void> | null = null;
  return {
    host: HOST,
    port,
    dir,
    url: `redis://${HOST}:${port}`,
    pid: child.pid!,
    pause: () => void child.kill('SIGSTOP'),
    resume: () => void child.kill('SIGCONT'),
    stop: () =>
      (stopping ??= (async () => {
        if (child.exitCode === null && child.signalCode === null) {
          child.kill('SIGCONT'); // a paused server would never see the SIGTERM
          child.kill('SIGTERM');
          const killer = setTimeout(() => child.kill('SIGKILL'), 5000);
          await exited;
          clearTimeout(killer);
        }
        if (ownDir) rmSync(dir, { recursive: true, force: true });
      })()),
  };
}

export interface RedisClusterHandle {
  /** Start-up nodes, as `RedisDriverOptions.cluster` takes them. */
  readonly nodes: Array<{ host: string; port: number }>;
  readonly servers: RedisServerHandle[];
  /** Stops every node (also after a failed start). */
  stop(): Promise<void>;
}

/** Starts `masters` cluster nodes (no replicas), joins them with `redis-cli --cluster create`, and waits for `cluster_state:ok`. */
export async function startRedisCluster(masters = 3): Promise<RedisClusterHandle> {
  const servers: RedisServerHandle[] = [];
  const stop = async (): Promise<void> => {
    await Promise.all(servers.map((s) => s.stop()));
  };
  try {
    servers.push(...(await Promise.all(Array.from({ length: masters }, () => startRedisServer({ clusterNode: true })))));
    await execFileAsync(
      'redis-cli',
      ['--cluster', 'create', ...servers.map((s) => `${s.host}:${s.port}`), '--cluster-replicas', '0', '--cluster-yes'],
      { timeout: 30_000 },
    );
    await waitForClusterOk(servers, 20_000);
  } catch (err) {
    await stop();
    throw err;
  }
  return { nodes: servers.map((s) => ({ host: s.host, port: s.port })), servers, stop };
}

async function waitForClusterOk(servers: RedisServerHandle[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const states = await Promise.all(
      servers.map(async (s) => {
        try {
          const { stdout } = await execFileAsync('redis-cli', ['-h', s.host, '-p', String(s.port), 'cluster', 'info'], { timeout: 5000 });
          return stdout.includes('cluster_state:ok');
        } catch {
          return false;
        }
      }),
    );
    if (states.every(Boolean)) return;
    if (Date.now() > deadline) throw new Error(`the test cluster did not reach cluster_state:ok within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export interface CommandWatcher {
  /**
   * The top-level commands that connections named `connectionName` sent to the watched servers
   * while `fn` ran, in execution order per server (servers one after the other). Commands a Lua
   * script runs are reported by MONITOR with source "lua" and are not included: they cost no round trip.
   */
  commandsOf(fn: () => Promise<unknown>): Promise<string[]>;
  stop(): Promise<void>;
}

/** Watches servers with MONITOR to count what a client (found by its connection name) sends. */
export async function watchCommands(endpoints: Array<{ host: string; port: number }>, connectionName: string): Promise<CommandWatcher> {
  const { Redis } = await import('ioredis');
  const watched = await Promise.all(
    endpoints.map(async ({ host, port }) => {
      const base = new Redis({ host, port });
      // monitor() opens a second connection; both have to be closed in stop().
      const monitor = await base.monitor();
      const probe = new Redis({ host, port });
      const seen: Array<{ command: string; args: string[]; source: string }> = [];
      monitor.on('monitor', (_time: string, args: string[], source: string) => void seen.push({ command: String(args[0]).toLowerCase(), args, source }));
      return { base, monitor, probe, seen };
    }),
  );

  /** MONITOR streams in execution order: once a marker sent now shows up, every earlier command has too. */
  async function drain(w: (typeof watched)[number]): Promise<number> {
    const marker = `marker-${Math.random().toString(36).slice(2)}`;
    await w.probe.echo(marker);
    const deadline = Date.now() + 5000;
    for (;;) {
      const at = w.seen.findIndex((e) => e.command === 'echo' && e.args[1] === marker);
      if (at >= 0) return at + 1;
      if (Date.now() > deadline) throw new Error('MONITOR did not deliver its marker within 5 s');
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  async function addressesOf(w: (typeof watched)[number]): Promise<Set<string>> {
    const list = String(await w.probe.client('LIST'));
    const addrs = list
      .split('\n')
      .filter((line) => line.includes(` name=${connectionName} `))
      .map((line) => /addr=(\S+)/.exec(line)?.[1] ?? '');
    return new Set(addrs.filter(Boolean));
  }

  return {
    async commandsOf(fn) {
      const starts = await Promise.all(watched.map(drain));
      await fn();
      const ends = await Promise.all(watched.map(drain));
      const out: string[] = [];
      for (let i = 0; i < watched.length; i++) {
        const addrs = await addressesOf(watched[i]);
        out.push(...watched[i].seen.slice(starts[i], ends[i]).filter((e) => addrs.has(e.source)).map((e) => e.command));
      }
      return out;
    },
    async stop() {
      for (const w of watched) {
        w.monitor.disconnect();
        w.base.disconnect();
        await w.probe.quit().catch(() => w.probe.disconnect());
      }
    },
  };
}
