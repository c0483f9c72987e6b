import { describe, it, expect } from '@jest/globals';
import { readSessionCookie, serializeCookie } from '../../lib/http/cookie.util.js';
import { safeEqual } from '../../lib/core/session-id.util.js';
import { newId } from '../support/records.js';

describe('readSessionCookie', () => {
  const id = newId();
  it('finds a well-formed ID among other cookies, quoted or not', () => {
    expect(readSessionCookie(`a=1; ML_SESS=${id}; b=2`, 'ML_SESS')).toEqual({ id, present: true });
    expect(readSessionCookie(`ML_SESS="${id}"`, 'ML_SESS')).toEqual({ id, present: true });
    expect(readSessionCookie(`XML_SESS=${id}`, 'ML_SESS')).toEqual({ id: null, present: false });
    // A big cookie jar (9 KiB) still finds the session.
    expect(readSessionCookie(`x=${'a'.repeat(9000)}; ML_SESS=${id}`, 'ML_SESS')).toEqual({ id, present: true });
  });
  it.each([
    [undefined, false],
    ['', false],
    ['ML_SESS', false],
    ['ML_SESS=', true],
    [`ML_SESS=${id}x`, true],
    [`ML_SESS=${id}; ML_SESS=${id}`, true],
    [`ML_SESS=${id.replace('ml_', 'ML_')}`, true],
    [`x=${'a'.repeat(17000)}; ML_SESS=${id}`, true],
  ])('%j → no ID', (header, present) => {
    expect(readSessionCookie(header as string | undefined, 'ML_SESS')).toEqual({ id: null, present });
  });
});

describe('serializeCookie', () => {
  it('writes attributes in a stable order and deletes with Max-Age=0', () => {
    const base = { path: '/', secure: true, httpOnly: true, sameSite: 'lax' as const, partitioned: false };
    expect(serializeCookie('S', 'v', base)).toBe('S=v; Path=/; HttpOnly; Secure; SameSite=Lax');
    expect(serializeCookie('S', '', { ...base, expires: 0 })).toBe('S=; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; Secure; SameSite=Lax');
  });
});

describe('safeEqual', () => {
  it('compares strings only, tolerating length mismatch', () => {
    expect(safeEqual('abc', 'abc')).toBe(true);
    expect(safeEqual('abc', 'abd')).toBe(false);
    expect(safeEqual('abc', 'abcd')).toBe(false);
    expect(safeEqual(['abc'], 'abc')).toBe(false);
    expect(safeEqual(undefined, undefined)).toBe(false);
  });
});
