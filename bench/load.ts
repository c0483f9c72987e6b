/**
 * The load generator: autocannon in a process of its own (started once by bench/run.ts and kept
 * for the whole run), so it never shares an event loop with a server under test. The runner
 * sends one job at a time over IPC and gets one summary back.
 */
import { Agent, get } from 'node:http';
import { performance } from 'node:perf_hooks';
import autocannon from 'autocannon';

export interface LoadJob {
  id: number;
  /** Base URL, e.g. `http://127.0.0.1:4101`. */
  url: string;
  path: string;
  connections: number;
  /** Seconds (a timed run) ... */
  duration?: number;
  /** ... or a fixed number of requests (sent by a plain keep-alive client, timed from the first request to the last response). */
  amount?: number;
  /** Session cookies (`name=value`), spread over the connections: connection i sends cookies[i % n]. Empty: no cookie. */
  cookies: string[];
  userAgent: string;
  /** Per-request timeout, seconds. */
  timeout?: number;
}

export interface LoadSummary {
  id: number;
  /** Mean of autocannon's per-second request counts. */
  rps: number;
  /** Completed requests / wall time of the run. */
  throughput: number;
  latencyAvg: number;
  p50: number;
  p99: number;
  max: number;
  total: number;
  ok2xx: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  duration: number;
}

/**
 * A fixed number of requests over `connections` keep-alive connections, each connection sending
 * its next request when the previous answer arrived. Used for the hot session, where the wall
 * time of a short run matters (autocannon's own timing works in whole-second ticks).
 */
async function runFixed(job: LoadJob & { amount: number }): Promise<LoadSummary> {
  const agent = new Agent({ keepAlive: true, maxSockets: job.connections });
  const target = new URL(job.url + job.path);
  const latencies: number[] = [];
  let issued = 0;
  let ok2xx = 0;
  let non2xx = 0;
  let errors = 0;
  const one = (cookie: string | undefined): Promise<number> =>
    new Promise((resolve, reject) => {
      const headers: Record<string, string> = { 'user-agent': job.userAgent };
      if (cookie) headers.cookie = cookie;
      const req = get(target, { agent, headers, timeout: (job.timeout ?? 10) * 1000 }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', reject);
    });
  const start = performance.now();
  const worker = async (i: number): Promise<void> => {
    const cookie = job.cookies.length ? job.cookies[i % job.cookies.length] : undefined;
    while (issued < job.amount) {
      issued++;
      const t = performance.now();
      try {
        const status = await one(cookie);
        if (status >= 200 && status < 300) ok2xx++;
        else non2xx++;
      } catch {
        errors++;
      }
      latencies.push(performance.now() - t);
    }
  };
  await Promise.all(Array.from({ length: job.connections }, (_, i) => worker(i)));
  const duration = (performance.now() - start) / 1000;
  agent.destroy();
  latencies.sort((a, b) => a - b);
  const pct = (p: number): number => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? 0;
  const total = ok2xx + non2xx;
  return {
    id: job.id,
    rps: total / duration,
    throughput: total / duration,
    latencyAvg: latencies.reduce((a, b) => a + b, 0) / Math.max(1, latencies.length),
    p50: Math.round(pct(0.5)),
    p99: Math.round(pct(0.99)),
    max: Math.round(latencies[latencies.length - 1] ?? 0),
    total,
    ok2xx,
    non2xx,
    errors,
    timeouts: 0,
    duration,
  };
}

/** A timed autocannon run. */
function runTimed(job: LoadJob): Promise<LoadSummary> {
  let next = 0;
  const options: autocannon.Options = {
    url: job.url + job.path,
    connections: job.connections,
    timeout: job.timeout ?? 10,
    headers: { 'user-agent': job.userAgent },
    setupClient: (client) => {
      const i = next++;
      const headers: Record<string, string> = { 'user-agent': job.userAgent };
      if (job.cookies.length > 0) headers.cookie = job.cookies[i % job.cookies.length];
      client.setHeaders(headers);
    },
  };
  options.duration = job.duration ?? 5;
  return new Promise((resolve, reject) => {
    autocannon(options, (err, result) => {
      if (err) return reject(err instanceof Error ? err : new Error(String(err)));
      resolve({
        id: job.id,
        rps: result.requests.average,
        throughput: result.duration > 0 ? result.requests.total / result.duration : 0,
        latencyAvg: result.latency.average,
        p50: result.latency.p50,
        p99: result.latency.p99,
        max: result.latency.max,
        total: result.requests.total,
        ok2xx: result['2xx'],
        non2xx: result.non2xx,
        errors: result.errors,
        timeouts: result.timeouts,
        duration: result.duration,
      });
    });
  });
}

function run(job: LoadJob): Promise<LoadSummary> {
  return job.amount !== undefined ? runFixed({ ...job, amount: job.amount }) : runTimed(job);
}

process.on('message', (msg: unknown) => {
  const job = msg as LoadJob;
  run(job).then(
    (summary) => process.send?.({ ok: true, summary }),
    (err: unknown) => process.send?.({ ok: false, id: job.id, error: err instanceof Error ? err.message : String(err) }),
  );
});
process.on('disconnect', () => process.exit(0));
process.send?.({ ready: true });
