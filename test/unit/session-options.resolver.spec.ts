import { describe, it, expect } from '@jest/globals';
import { resolveSessionOptions } from '../../lib/core/session-options.resolver.js';

describe('resolveSessionOptions: timeouts in whole milliseconds', () => {
  // Stored times must be whole ms (BIGINT columns; the encryption binds them as such).
  it('are rounded, and a positive timeout never rounds to 0', () => {
    expect(resolveSessionOptions({ absoluteTimeout: 3600 / 7 }).absoluteTimeoutMs).toBe(514_286);
    const tiny = resolveSessionOptions({ idleTimeout: 0.0001, absoluteTimeout: 0.0004 });
    expect([tiny.idleTimeoutMs, tiny.absoluteTimeoutMs]).toEqual([1, 1]);
  });
});
