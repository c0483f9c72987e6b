import { describe, it, expect } from '@jest/globals';
import { SessionBag } from '../../lib/core/session-bag.js';

describe('SessionBag', () => {
  it('dot notation: get/set/has/forget/pull/increment', () => {
    const bag = new SessionBag();
    bag.set('user.profile.name', 'Ada');
    expect(bag.get('user')).toEqual({ profile: { name: 'Ada' } });
    expect(bag.get('user.profile.name')).toBe('Ada');
    expect(bag.get('user.missing.deep', 'dflt')).toBe('dflt');
    expect(bag.has('user.profile')).toBe(true);
    expect(bag.has('user.nope')).toBe(false);
    bag.forget('user.profile.name');
    expect(bag.get('user.profile')).toEqual({});
    bag.set('count', 2);
    expect(bag.increment('count')).toBe(3);
    expect(bag.increment('fresh', 5)).toBe(5);
    expect(bag.pull('count')).toBe(3);
    expect(bag.has('count')).toBe(false);
    expect(bag.pull('count', 'gone')).toBe('gone');
  });

  it('values are copied in and out: callers cannot mutate stored data behind its back', () => {
    const bag = new SessionBag();
    const obj = { list: [1] };
    bag.set('o', obj);
    obj.list.push(2);
    expect(bag.get('o')).toEqual({ list: [1] });
    (bag.get('o') as { list: number[] }).list.push(3);
    expect(bag.get('o')).toEqual({ list: [1] });
  });

  it('primitives are stored exactly as a JSON round trip would leave them (what the next request reads)', () => {
    const samples: unknown[] = [0, -0, 1.5, -7, Number.MAX_VALUE, NaN, Infinity, -Infinity, '', 'a\u0000b', '\ud800 lone', 'ü', true, false, null];
    const bag = new SessionBag();
    samples.forEach((v, i) => bag.set(`k${i}`, v));
    bag.flash('f', NaN);
    const roundTrip = (v: unknown): unknown => JSON.parse(JSON.stringify(v));
    samples.forEach((v, i) => expect(Object.is(bag.get(`k${i}`), roundTrip(v))).toBe(true));
    expect(bag.getFlash('f')).toBeNull();
    // And the stored form serializes to the same JSON as before.
    expect(JSON.stringify(bag.toStored().data)).toBe(JSON.stringify(Object.fromEntries(samples.map((v, i) => [`k${i}`, v]))));
  });

  it('refuses non-JSON values, reserved segments and empty keys with clear errors', () => {
    const bag = new SessionBag();
    expect(() => bag.set('f', () => 1)).toThrow(/JSON-compatible/);
    expect(() => bag.set('a.__proto__.polluted', 1)).toThrow(/reserved segment/);
    expect(() => bag.set('', 1)).toThrow(/non-empty/);
    expect(() => bag.set('a..b', 1)).toThrow(/empty segment/);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    bag.set('s', 'text');
    expect(() => bag.increment('s')).toThrow(/not a number/);
  });

  it('flash aging: N and N+1, gone in N+2; now() only N; reflash and keep extend by one', () => {
    let bag = new SessionBag();
    bag.flash('a', 1);
    bag.now('n', 'x');
    expect(bag.getFlash('a')).toBe(1);
    expect(bag.getFlash('n')).toBe('x');
    bag.ageFlash(); // end of N
    bag = SessionBag.fromPayload(JSON.parse(JSON.stringify(bag.toStored())));
    expect(bag.getFlash('a')).toBe(1);
    expect(bag.getFlash('n')).toBeUndefined();
    bag.flash('b', 2);
    bag.keep(['a']);
    bag.ageFlash(); // end of N+1
    expect(bag.getFlash('a')).toBe(1);
    expect(bag.getFlash('b')).toBe(2);
    bag.reflash();
    bag.ageFlash(); // end of N+2
    expect(bag.getFlash('a')).toBe(1);
    bag.ageFlash(); // end of N+3
    expect(bag.getFlash('a')).toBeUndefined();
    expect(bag.isEmpty).toBe(true);
  });

  it('a flash key named like an Object.prototype member survives storage', () => {
    const bag = new SessionBag();
    bag.flash('__proto__', 'p');
    bag.flash('constructor', 'c');
    bag.ageFlash();
    const next = SessionBag.fromPayload(JSON.parse(JSON.stringify(bag.toStored())));
    expect(next.getFlash('__proto__')).toBe('p');
    expect(next.getFlash('constructor')).toBe('c');
  });

  it('fromPayload rejects shapes it cannot trust', () => {
    expect(() => SessionBag.fromPayload(null)).toThrow();
    expect(() => SessionBag.fromPayload({ data: [], flash: {} })).toThrow();
    expect(() => SessionBag.fromPayload({ data: {}, flash: { x: [1] } })).toThrow();
    expect(SessionBag.fromPayload({ data: { a: 1 }, flash: { f: [2, true] } }).getFlash('f')).toBe(2);
  });

  it('tracks dirtiness', () => {
    const bag = SessionBag.fromPayload({ data: { a: 1 }, flash: {} });
    expect(bag.isDirty).toBe(false);
    bag.get('a');
    expect(bag.isDirty).toBe(false);
    bag.set('a', 2);
    expect(bag.isDirty).toBe(true);
  });
});
