/**
 * A counting TCP proxy in front of Redis (used by the round-trip tests and by the benchmark):
 * every command a client sends (RESP arrays, or inline commands) is counted by name, with the
 * bytes in each direction, and grouped into round trips. A round trip starts when a connection
 * sends after it has received a reply (or for the first time): commands sent back to back without
 * waiting for a reply (pipelined, or coalesced into one write) share one round trip.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';

export interface ProxyCounts {
  commands: number;
  roundTrips: number;
  /** Command names per round trip, in order (the first 1,000 round trips since the last reset). */
  bursts: string[][];
  byName: Record<string, number>;
  bytesToRedis: number;
  bytesFromRedis: number;
}

const CRLF = Buffer.from('\r\n');

/** How the proxy names an EVALSHA of a script with this SHA1 (e.g. a driver's `WRITE_SCRIPT`). */
export const evalsha = (script: { sha: string }): string => `EVALSHA ${script.sha.slice(0, 8)}…`;

/** Incremental parser of the client→server direction: returns the names of complete commands and keeps the rest. */
class CommandSplitter {
  private buf: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): string[] {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    const names: string[] = [];
    for (;;) {
      const parsed = this.parseOne();
      if (parsed === null) break;
      names.push(parsed.name);
      this.buf = this.buf.subarray(parsed.end);
    }
    return names;
  }

  private parseOne(): { name: string; end: number } | null {
    const buf = this.buf;
    if (buf.length === 0) return null;
    const lineEnd = buf.indexOf(CRLF);
    if (lineEnd === -1) return null;
    if (buf[0] !== 0x2a /* '*' */) {
      const words = buf.subarray(0, lineEnd).toString('latin1').trim().split(/\s+/);
      return { name: (words[0] ?? '').toUpperCase(), end: lineEnd + 2 };
    }
    const count = Number(buf.subarray(1, lineEnd).toString('latin1'));
    let pos = lineEnd + 2;
    let name = '';
    let sub = '';
    for (let i = 0; i < count; i++) {
      const end = buf.indexOf(CRLF, pos);
      if (end === -1) return null;
      const len = Number(buf.subarray(pos + 1, end).toString('latin1'));
      const start = end + 2;
      if (buf.length < start + len + 2) return null;
      if (i === 0) name = buf.subarray(start, start + len).toString('latin1').toUpperCase();
      if (i === 1 && name === 'EVALSHA') sub = buf.subarray(start, start + Math.min(len, 8)).toString('latin1');
      pos = start + len + 2;
    }
    return { name: sub ? `${name} ${sub}…` : name, end: pos };
  }
}

export class CountingRedisProxy {
  private server: Server | null = null;
  private readonly sockets = new Set<Socket>();
  private counts: ProxyCounts = CountingRedisProxy.empty();

  /** @param listenPort 0 picks a free port; read it from `port` after `start()`. */
  constructor(
    private listenPort: number,
    private readonly target: { host: string; port: number },
  ) {}

  get port(): number {
    return this.listenPort;
  }

  private static empty(): ProxyCounts {
    return { commands: 0, roundTrips: 0, bursts: [], byName: {}, bytesToRedis: 0, bytesFromRedis: 0 };
  }

  async start(): Promise<void> {
    this.server = createServer((client) => {
      const upstream = connect(this.target.port, this.target.host);
      const splitter = new CommandSplitter();
      /** Whether this connection has received anything since it last sent: its next send is a new round trip. */
      let answered = true;
      let burst: string[] = [];
      this.sockets.add(client);
      this.sockets.add(upstream);
      client.on('data', (chunk: Buffer) => {
        const counts = this.counts;
        counts.bytesToRedis += chunk.length;
        if (answered) {
          answered = false;
          counts.roundTrips++;
          burst = [];
          if (counts.bursts.length < 1000) counts.bursts.push(burst);
        }
        for (const name of splitter.push(chunk)) {
          counts.commands++;
          counts.byName[name] = (counts.byName[name] ?? 0) + 1;
          burst.push(name);
        }
        upstream.write(chunk);
      });
      upstream.on('data', (chunk: Buffer) => {
        this.counts.bytesFromRedis += chunk.length;
        answered = true;
        client.write(chunk);
      });
      const close = (): void => {
        client.destroy();
        upstream.destroy();
        this.sockets.delete(client);
        this.sockets.delete(upstream);
      };
      client.on('close', close);
      upstream.on('close', close);
      client.on('error', close);
      upstream.on('error', close);
    });
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(this.listenPort, '127.0.0.1', () => {
        this.listenPort = (this.server!.address() as { port: number }).port;
        resolve();
      });
    });
  }

  /** Runs `fn` and returns the round trips it caused, each as the command names sent in it. */
  async burstsOf(fn: () => Promise<unknown>): Promise<string[][]> {
    this.reset();
    await fn();
    return this.snapshot().bursts;
  }

  /** Counts since the last reset (a copy). */
  snapshot(): ProxyCounts {
    return { ...this.counts, bursts: this.counts.bursts.map((b) => [...b]), byName: { ...this.counts.byName } };
  }

  reset(): void {
    this.counts = CountingRedisProxy.empty();
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    this.server = null;
  }
}
