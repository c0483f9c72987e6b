/** Client IP and scheme behind proxies: how many X-Forwarded-For entries are believed. */
import { describe, it, expect } from '@jest/globals';
import type { IncomingMessage } from 'node:http';
import { clientIp, isSecureRequest } from '../../lib/http/request-info.util.js';

const req = (xff: string | string[] | undefined, peer = '10.0.0.2', proto?: string): IncomingMessage =>
  ({ headers: { 'x-forwarded-for': xff, 'x-forwarded-proto': proto }, socket: { remoteAddress: peer } }) as unknown as IncomingMessage;

describe('clientIp', () => {
  it('without proxy trust: the socket peer, whatever X-Forwarded-For says (IPv4-mapped IPv6 normalized)', () => {
    expect(clientIp(req('198.51.100.1', '::ffff:10.0.0.2'), 0)).toBe('10.0.0.2');
  });

  it('trusting every proxy (true): the left-most entry', () => {
    expect(clientIp(req('198.51.100.1, 203.0.113.5, 10.0.0.9'), Number.POSITIVE_INFINITY)).toBe('198.51.100.1');
  });

  it('trusting N proxies: the entry N from the right (the address the farthest trusted proxy saw)', () => {
    const xff = '6.6.6.6, 198.51.100.1, 10.0.0.9';
    expect(clientIp(req(xff), 1)).toBe('10.0.0.9');
    expect(clientIp(req(xff), 2)).toBe('198.51.100.1');
    expect(clientIp(req(xff), 3)).toBe('6.6.6.6');
    // Fewer entries than trusted proxies: the farthest one there is.
    expect(clientIp(req(xff), 7)).toBe('6.6.6.6');
  });

  it('repeated headers count as one list, in order', () => {
    expect(clientIp(req(['6.6.6.6', '198.51.100.1']), 1)).toBe('198.51.100.1');
  });

  it('an entry with a port (as some load balancers append) or in brackets is its address; plain IPv6 stays whole', () => {
    expect(clientIp(req('6.6.6.6, 198.51.100.1:54321'), 1)).toBe('198.51.100.1');
    expect(clientIp(req('[2001:db8::1]:443'), 1)).toBe('2001:db8::1');
    expect(clientIp(req('[2001:db8::2]'), 1)).toBe('2001:db8::2');
    expect(clientIp(req('2001:db8::3'), 1)).toBe('2001:db8::3');
    expect(clientIp(req('::ffff:198.51.100.7'), 1)).toBe('198.51.100.7');
  });

  it('a chosen entry that is not an IP address falls back to the socket peer; no header, the peer', () => {
    expect(clientIp(req('198.51.100.1, not-an-ip'), 1)).toBe('10.0.0.2');
    expect(clientIp(req(' , '), 1)).toBe('10.0.0.2');
    expect(clientIp(req(undefined), 1)).toBe('10.0.0.2');
  });
});

describe('isSecureRequest', () => {
  it('believes X-Forwarded-Proto only when some proxy is trusted', () => {
    expect(isSecureRequest(req(undefined, '10.0.0.2', 'https'), 0)).toBe(false);
    expect(isSecureRequest(req(undefined, '10.0.0.2', 'https'), 1)).toBe(true);
    expect(isSecureRequest(req(undefined, '10.0.0.2', 'http, https'), 1)).toBe(false);
  });
});
