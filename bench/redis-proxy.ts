/**
 * A counting TCP proxy in front of Redis: every command a client sends (RESP arrays, or inline
 * commands) is counted by name, with the bytes in each direction. None of the contenders
 * pipelines the commands of one request (each one awaits the previous reply), and the
 * measurement sends one HTTP request at a time, so commands counted = round trips.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';

export interface ProxyCounts {
  commands: number;
  byName: Record<string, number>;
  bytesToRedis: number;
  bytesFromRedis: number;
}

const CRLF = Buffer.from('\r\n');

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

  constructor(
    private readonly listenPort: number,
    private readonly target: { host: string; port: number },
  ) {}

  private static empty(): ProxyCounts {
    return { commands: 0, byName: {}, bytesToRedis: 0, bytesFromRedis: 0 };
  }

  async start(): Promise<void> {
    this.server = createServer((client) => {
      const upstream = connect(this.target.port, this.target.host);
      const splitter = new CommandSplitter();
      this.sockets.add(client);
      this.sockets.add(upstream);
      client.on('data', (chunk: Buffer) => {
        this.counts.bytesToRedis += chunk.length;
        for (const name of splitter.push(chunk)) {
          this.counts.commands++;
          this.counts.byName[name] = (this.counts.byName[name] ?? 0) + 1;
        }
        upstream.write(chunk);
      });
      upstream.on('data', (chunk: Buffer) => {
        this.counts.bytesFromRedis += chunk.length;
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
      this.server!.listen(this.listenPort, '127.0.0.1', () => resolve());
    });
  }

  /** Counts since the last reset (a copy). */
  snapshot(): ProxyCounts {
    return { ...this.counts, byName: { ...this.counts.byName } };
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
