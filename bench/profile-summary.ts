/**
 * Summarizes a V8 `.cpuprofile` (from `npm run bench -- --profile=c`, or `node --cpu-prof`):
 * self time by function and by package/file, and total (inclusive) time of the functions of
 * interest. Usage: `node dist/bench/profile-summary.js bench/results/profiles/c.cpuprofile [top] [filter]`.
 */
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

/** `node_modules/<pkg>` (or `lib/…`, `bench/…`, `node:…`) a frame belongs to. */
function owner(url: string): string {
  if (!url) return '(native / V8)';
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm) return nm[1];
  const own = /\/dist\/((?:lib|bench)\/.*)$/.exec(url);
  if (own) return own[1];
  if (url.startsWith('node:')) return url;
  return url.replace(/^file:\/\//, '');
}

function frameName(f: CallFrame): string {
  return `${f.functionName || '(anonymous)'} ${owner(f.url)}:${f.lineNumber + 1}`;
}

/**
 * @param window only samples taken between these offsets (ms from the profile's start) count:
 *   the load phase, without start-up and idle tails.
 */
export function summarize(path: string, top = 25, filter?: string, window?: { fromMs: number; toMs: number }, requests?: number): string {
  const profile = JSON.parse(readFileSync(path, 'utf8')) as Profile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const selfUs = new Map<number, number>();
  let t = 0;
  profile.samples.forEach((id, i) => {
    t += profile.timeDeltas[i] ?? 0;
    if (window && (t < window.fromMs * 1000 || t > window.toMs * 1000)) return;
    selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  });
  const total = [...selfUs.values()].reduce((a, b) => a + b, 0);

  const selfByFn = new Map<string, number>();
  const selfByOwner = new Map<string, number>();
  const inclusiveByFn = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const node = byId.get(id)!;
    const name = frameName(node.callFrame);
    selfByFn.set(name, (selfByFn.get(name) ?? 0) + us);
    const o = node.callFrame.url ? owner(node.callFrame.url) : node.callFrame.functionName.startsWith('(') ? node.callFrame.functionName : '(native / V8)';
    selfByOwner.set(o, (selfByOwner.get(o) ?? 0) + us);
    // Inclusive: count once per distinct function on the stack.
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const n = frameName(byId.get(cur)!.callFrame);
      if (seen.has(n)) continue;
      seen.add(n);
      inclusiveByFn.set(n, (inclusiveByFn.get(n) ?? 0) + us);
    }
  }
  const idle = [...selfByOwner.entries()].filter(([k]) => k === '(idle)').reduce((a, [, v]) => a + v, 0);
  // With a request count: also CPU µs per request (idle excluded), which compares across runs of different speed.
  const pct = (us: number): string =>
    `${((100 * us) / total).toFixed(1).padStart(5)}%${requests ? ` ${(us / requests).toFixed(1).padStart(7)} µs/req` : ''}`;
  const list = (m: Map<string, number>, n: number, f?: string): string[] =>
    [...m.entries()]
      .filter(([k]) => !f || k.includes(f))
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([k, v]) => `${pct(v)}  ${k}`);
  return [
    `${path}: ${(total / 1e6).toFixed(2)} s sampled${window ? ` (${(window.fromMs / 1000).toFixed(1)}–${(window.toMs / 1000).toFixed(1)} s after start)` : ''}` +
      (requests ? `, ${requests} requests, ${((total - idle) / requests).toFixed(0)} µs busy CPU per request` : ''),
    '',
    'self time by package / file:',
    ...list(selfByOwner, top),
    '',
    'self time by function:',
    ...list(selfByFn, top),
    '',
    `total (inclusive) time${filter ? ` of functions matching "${filter}"` : ''}:`,
    ...list(inclusiveByFn, top, filter),
  ].join('\n');
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href && process.argv[2]) {
  console.log(summarize(process.argv[2], Number(process.argv[3] ?? 25), process.argv[4]));
}
