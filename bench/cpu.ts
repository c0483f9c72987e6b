/**
 * CPU accounting from /proc (Linux): how much CPU the server under test, the load generator and
 * the store used during a measurement, and how much went to everything else on the machine
 * (other people's builds and tests share these 2 cores). Per-request CPU is far less sensitive
 * to such noise than req/s, and the "other" share tells which rounds were disturbed.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';

let tickMs = 10;
try {
  tickMs = 1000 / Number(execFileSync('getconf', ['CLK_TCK']).toString().trim());
} catch {
  // Linux's usual USER_HZ (100) then.
}

/** User + system CPU of a process (its exited children not included), ms; 0 when it is gone. */
export function processCpuMs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) * tickMs; // utime, stime
  } catch {
    return 0;
  }
}

/**
 * Times the process's threads went to sleep waiting for something (voluntary context switches,
 * summed over its threads). For the load generator, each one is a wake-up that the server's next
 * response pays for on loopback: the kernel delivers a loopback send in the sender's context,
 * waking the receiver included (see docs/benchmarks.md, "What limits (c)").
 */
export function voluntarySwitches(pid: number): number {
  let sum = 0;
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        const m = /voluntary_ctxt_switches:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8'));
        if (m) sum += Number(m[1]);
      } catch {
        // thread gone meanwhile
      }
    }
  } catch {
    // process gone
  }
  return sum;
}

/** PIDs whose command name is `name` (e.g. every `postgres` backend). */
export function pidsNamed(name: string): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/comm`, 'utf8').trim() === name) out.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** Machine-wide CPU time, ms summed over all cores: busy and total. */
export function machineCpuMs(): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0];
  const v = line.trim().split(/\s+/).slice(1, 9).map(Number); // user nice system idle iowait irq softirq steal
  const total = v.reduce((a, b) => a + b, 0);
  return { busy: (total - v[3] - v[4]) * tickMs, total: total * tickMs };
}

export interface CpuUse {
  /** ms of CPU in the window. */
  serverMs: number;
  loadMs: number;
  storeMs: number;
  /** Everything else that ran on the machine, ms. */
  otherMs: number;
  /** The load generator's voluntary context switches (see `voluntarySwitches`). */
  loadWakeups: number;
  /** Machine capacity in the window (wall time × cores), ms. */
  capacityMs: number;
}

/**
 * Starts a window; the returned function ends it. `storePids` is evaluated at both ends: a store
 * process that appeared meanwhile (a pool connection's PostgreSQL backend, opened again after the
 * pool closed it while idle) counts whole; one that exited meanwhile is lost (rare, small).
 */
export function cpuWindow(serverPid: number, loadPid: number, storePids: () => number[]): () => CpuUse {
  const store0 = new Map(storePids().map((p) => [p, processCpuMs(p)]));
  const s0 = processCpuMs(serverPid);
  const l0 = processCpuMs(loadPid);
  const w0 = voluntarySwitches(loadPid);
  const m0 = machineCpuMs();
  return () => {
    const m1 = machineCpuMs();
    const serverMs = processCpuMs(serverPid) - s0;
    const loadMs = processCpuMs(loadPid) - l0;
    const storeMs = storePids().reduce((sum, p) => sum + Math.max(0, processCpuMs(p) - (store0.get(p) ?? 0)), 0);
    const busy = m1.busy - m0.busy;
    const loadWakeups = voluntarySwitches(loadPid) - w0;
    return { serverMs, loadMs, storeMs, otherMs: Math.max(0, busy - serverMs - loadMs - storeMs), capacityMs: m1.total - m0.total, loadWakeups };
  };
}
