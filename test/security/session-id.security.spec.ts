/** ASVS 3.2.2 (≥ 64 bits of entropy; we give 256), 3.2.4 (CSPRNG), OWASP Session Management Cheat Sheet "Session ID Entropy". */
import { describe, it, expect } from '@jest/globals';
import { generateSessionId } from '../../lib/core/session-id.util.js';
import { isValidSessionId } from '../../lib/contracts/session-id.js';

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

describe('session ID entropy and uniqueness over 100,000 IDs', () => {
  const ids = Array.from({ length: 100_000 }, generateSessionId);

  it('every ID is well-formed and unique', () => {
    expect(ids.every(isValidSessionId)).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
    // No shared 12-character prefix of the random part either (a weak generator would collide here first).
    expect(new Set(ids.map((id) => id.slice(8, 20))).size).toBe(ids.length);
  });

  it('characters are uniformly distributed (chi-square over the 42 full 6-bit positions)', () => {
    const counts = new Map<string, number>();
    for (const id of ids) for (let i = 8; i < 50; i++) counts.set(id[i], (counts.get(id[i]) ?? 0) + 1);
    expect(counts.size).toBe(64);
    const expected = (ids.length * 42) / 64;
    let chi = 0;
    for (const c of ALPHABET) chi += ((counts.get(c) ?? 0) - expected) ** 2 / expected;
    // 63 degrees of freedom: p = 1e-6 is at about 133; a biased generator lands far above.
    expect(chi).toBeLessThan(140);
  });

  it('bits are balanced: ones are 50% ± 0.1% of 25.6 million random bits', () => {
    const popcount = Uint8Array.from({ length: 256 }, (_, b) => b.toString(2).replace(/0/g, '').length);
    let ones = 0;
    let total = 0;
    let wrongLength = 0;
    for (const id of ids) {
      const bytes = Buffer.from(id.slice(8), 'base64url');
      if (bytes.length !== 32) wrongLength++;
      for (const byte of bytes) ones += popcount[byte];
      total += bytes.length * 8;
    }
    expect(wrongLength).toBe(0);
    expect(Math.abs(ones / total - 0.5)).toBeLessThan(0.001);
  });
});
