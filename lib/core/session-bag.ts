/**
 * The session's data: persistent attributes with dot-notation access, and flash data with
 * request-based aging (Laravel's semantics):
 *
 * - `flash(k, v)` in request N: readable in N and N+1, gone in N+2.
 * - `now(k, v)`: readable in the current request only.
 * - `reflash()`: every current flash value lives one more request; `keep(...keys)`: those keys do.
 *
 * Each flash entry is `new` (survives the next commit) or `old` (removed at the next commit);
 * `ageFlash()` runs once per request at commit: drop `old`, turn `new` into `old`.
 */
export interface StoredBag {
  data: Record<string, unknown>;
  /** key → [value, isNew] */
  flash: Record<string, [unknown, boolean]>;
}

const FORBIDDEN_SEGMENTS = new Set(['__proto__', 'prototype', 'constructor']);

export class SessionBag {
  private data: Record<string, unknown>;
  private flashes: Map<string, { value: unknown; isNew: boolean }>;
  private changed = false;

  constructor(stored?: StoredBag) {
    this.data = stored ? stored.data : {};
    this.flashes = new Map();
    if (stored) for (const [k, [value, isNew]] of Object.entries(stored.flash)) this.flashes.set(k, { value, isNew });
  }

  /** Rebuilds a bag from untrusted deserialized input; throws when the shape is wrong. */
  static fromPayload(payload: unknown): SessionBag {
    if (!isPlainObject(payload) || !isPlainObject(payload.data) || !isPlainObject(payload.flash)) {
      throw new TypeError('Session payload has an unexpected shape.');
    }
    for (const entry of Object.values(payload.flash)) {
      if (!Array.isArray(entry) || entry.length !== 2 || typeof entry[1] !== 'boolean') throw new TypeError('Session flash data has an unexpected shape.');
    }
    return new SessionBag(payload as unknown as StoredBag);
  }

  /** True once anything was changed since load (flash aging included). */
  get isDirty(): boolean {
    return this.changed;
  }

  markClean(): void {
    this.changed = false;
  }

  /** True when there is neither data nor flash data. */
  get isEmpty(): boolean {
    return Object.keys(this.data).length === 0 && this.flashes.size === 0;
  }

  get(key: string, defaultValue?: unknown): unknown {
    const node = this.lookup(key);
    return node === undefined ? defaultValue : copyOut(node);
  }

  has(key: string): boolean {
    const node = this.lookup(key);
    return node !== undefined && node !== null;
  }

  /** True when `key` holds any value, `null` included (no copy is made). */
  exists(key: string): boolean {
    return this.lookup(key) !== undefined;
  }

  /** The stored node at `key` (not a copy: internal use only), or undefined. */
  private lookup(key: string): unknown {
    let node: unknown = this.data;
    for (const part of splitKey(key)) {
      if (!isPlainObject(node) || !Object.prototype.hasOwnProperty.call(node, part)) return undefined;
      node = node[part];
    }
    return node;
  }

  set(key: string, value: unknown): void {
    if (value === undefined) return this.forget(key);
    const parts = splitKey(key);
    let node = this.data;
    for (const part of parts.slice(0, -1)) {
      const next = node[part];
      if (!isPlainObject(next)) node[part] = {};
      node = node[part] as Record<string, unknown>;
    }
    // A copy in: later mutations of the caller's object must not leak into the session unseen.
    node[parts[parts.length - 1]] = toStorable(value, key);
    this.changed = true;
  }

  forget(key: string): void {
    const parts = splitKey(key);
    let node: unknown = this.data;
    for (const part of parts.slice(0, -1)) {
      if (!isPlainObject(node)) return;
      node = node[part];
    }
    const last = parts[parts.length - 1];
    if (isPlainObject(node) && Object.prototype.hasOwnProperty.call(node, last)) {
      delete node[last];
      this.changed = true;
    }
  }

  all(): Record<string, unknown> {
    return structuredClone(this.data);
  }

  pull(key: string, defaultValue?: unknown): unknown {
    const value = this.get(key, defaultValue);
    this.forget(key);
    return value;
  }

  increment(key: string, by = 1): number {
    const current = this.get(key, 0);
    if (typeof current !== 'number' || !Number.isFinite(current)) {
      throw new TypeError(`Cannot increment session key "${key}": it holds a ${typeof current}, not a number.`);
    }
    const next = current + by;
    this.set(key, next);
    return next;
  }

  clear(): void {
    if (!this.isEmpty) this.changed = true;
    this.data = {};
    this.flashes.clear();
  }

  flash(key: string, value: unknown): void {
    this.flashes.set(key, { value: toStorable(value, key), isNew: true });
    this.changed = true;
  }

  now(key: string, value: unknown): void {
    this.flashes.set(key, { value: toStorable(value, key), isNew: false });
    this.changed = true;
  }

  getFlash(key: string, defaultValue?: unknown): unknown {
    const entry = this.flashes.get(key);
    return entry === undefined ? defaultValue : copyOut(entry.value);
  }

  hasFlash(key: string): boolean {
    return this.flashes.has(key);
  }

  reflash(): void {
    for (const entry of this.flashes.values()) entry.isNew = true;
    if (this.flashes.size > 0) this.changed = true;
  }

  keep(keys: string[]): void {
    for (const key of keys) {
      const entry = this.flashes.get(key);
      if (entry) {
        entry.isNew = true;
        this.changed = true;
      }
    }
  }

  /** End of request: drop what was already shown, keep what was flashed now for one more request. */
  ageFlash(): void {
    for (const [key, entry] of this.flashes) {
      if (entry.isNew) entry.isNew = false;
      else this.flashes.delete(key);
      this.changed = true;
    }
  }

  toStored(): StoredBag {
    // No prototype: a flash key such as `__proto__` is then an ordinary property, not a setter.
    const flash: StoredBag['flash'] = Object.create(null) as StoredBag['flash'];
    for (const [k, { value, isNew }] of this.flashes) flash[k] = [value, isNew];
    return { data: this.data, flash };
  }
}

function splitKey(key: string): string[] {
  if (typeof key !== 'string' || key.length === 0) throw new TypeError('A session key must be a non-empty string.');
  const parts = key.split('.');
  for (const part of parts) {
    if (part.length === 0) throw new TypeError(`Session key "${key}" has an empty segment.`);
    if (FORBIDDEN_SEGMENTS.has(part)) throw new TypeError(`Session key "${key}" uses the reserved segment "${part}".`);
  }
  return parts;
}

function toStorable(value: unknown, key: string): unknown {
  if (typeof value === 'function' || typeof value === 'symbol' || typeof value === 'bigint') {
    throw new TypeError(`Session value for "${key}" is a ${typeof value}: store JSON-compatible values only.`);
  }
  // JSON round trip: what the request sees now is exactly what the next request will read.
  // Primitives take the round trip's result directly (it is the per-request common case).
  switch (typeof value) {
    case 'undefined':
      return undefined;
    case 'string':
    case 'boolean':
      return value;
    case 'number':
      // As JSON: NaN and ±Infinity become null, -0 becomes 0.
      return Number.isFinite(value) ? value + 0 : null;
    default:
      return value === null ? null : JSON.parse(JSON.stringify(value));
  }
}

/** A copy for the caller: objects and arrays are cloned so changes need `set()`; primitives need no copy. */
function copyOut(value: unknown): unknown {
  return typeof value === 'object' && value !== null ? structuredClone(value) : value;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
