/**
 * A TCP proxy in front of a real server that can fail the way networks and servers do:
 * `freeze()` keeps every connection open but forwards nothing either way (a paused server, a
 * black-holed route), `thaw()` forwards again (held bytes first), `cutAll()` resets every
 * connection (a restart, a failover, a killed backend). New connections keep working after a cut.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';

interface Pipe {
  client: Socket;
  upstream: Socket;
  held: Array<{ to: Socket; data: Buffer }>;
}

export class TcpFaultProxy {
  private readonly server: Server;
  private readonly pipes = new Set<Pipe>();
  private frozen = false;

  private constructor(
    private readonly targetHost: string,
    private readonly targetPort: number,
  ) {
    this.server = createServer((client) => this.accept(client));
  }

  /** Listens on a free port of 127.0.0.1. */
  static async start(targetHost: string, targetPort: number): Promise<TcpFaultProxy> {
    const proxy = new TcpFaultProxy(targetHost, targetPort);
    await new Promise<void>((resolve) => proxy.server.listen(0, '127.0.0.1', resolve));
    return proxy;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  /** Connections open right now. */
  get connections(): number {
    return this.pipes.size;
  }

  freeze(): void {
    this.frozen = true;
  }

  thaw(): void {
    this.frozen = false;
    for (const pipe of this.pipes) {
      for (const { to, data } of pipe.held.splice(0)) if (!to.destroyed) to.write(data);
    }
  }

  /** Resets every open connection, both sides. */
  cutAll(): void {
    for (const pipe of this.pipes) {
      pipe.client.resetAndDestroy();
      pipe.upstream.destroy();
    }
    this.pipes.clear();
  }

  async close(): Promise<void> {
    this.cutAll();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: Socket): void {
    const upstream = connect(this.targetPort, this.targetHost);
    const pipe: Pipe = { client, upstream, held: [] };
    this.pipes.add(pipe);
    const forward = (to: Socket) => (data: Buffer) => {
      if (this.frozen) pipe.held.push({ to, data });
      else if (!to.destroyed) to.write(data);
    };
    client.on('data', forward(upstream));
    upstream.on('data', forward(client));
    const end = (): void => {
      this.pipes.delete(pipe);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  }
}
