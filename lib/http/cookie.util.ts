import { isValidSessionId } from '../contracts/session-id.js';

/** Longest Cookie header we look into (Node's default limit for all headers together is 16 KiB). */
export const MAX_COOKIE_HEADER = 16384;

/**
 * Finds the session cookie in a `Cookie` header. Anything odd (name twice, not well-formed,
 * header too long, non-ASCII) reads as "no session": the caller starts a fresh one.
 */
export function readSessionCookie(header: string | string[] | undefined, name: string): { id: string | null; present: boolean } {
  if (header === undefined) return { id: null, present: false };
  const text = Array.isArray(header) ? header.join('; ') : header;
  if (typeof text !== 'string' || text.length === 0) return { id: null, present: false };
  if (text.length > MAX_COOKIE_HEADER) return { id: null, present: true };
  let value: string | null = null;
  let count = 0;
  let start = 0;
  while (start <= text.length) {
    let end = text.indexOf(';', start);
    if (end === -1) end = text.length;
    // Look for '=' inside this segment only: scanning past it is quadratic on "a;b;c;…".
    const segment = text.slice(start, end);
    const eq = segment.indexOf('=');
    if (eq !== -1 && segment.slice(0, eq).trim() === name) {
      count++;
      value = segment.slice(eq + 1).trim();
    }
    start = end + 1;
  }
  if (count === 0) return { id: null, present: false };
  // The same name twice (cookie tossing from a sibling domain or path): trust neither.
  if (count > 1 || value === null) return { id: null, present: true };
  if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
  return { id: isValidSessionId(value) ? value : null, present: true };
}

/** The value of a plain cookie (the first one of that name), or null. */
export function readCookie(header: string | string[] | undefined, name: string): string | null {
  if (header === undefined) return null;
  const text = Array.isArray(header) ? header.join('; ') : header;
  if (typeof text !== 'string' || text.length > MAX_COOKIE_HEADER) return null;
  for (const part of text.split(';')) {
    const eq = part.indexOf('=');
    if (eq !== -1 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return null;
}

export interface CookieAttributes {
  path: string;
  domain?: string;
  secure: boolean;
  httpOnly: boolean;
  sameSite: 'lax' | 'strict' | 'none';
  partitioned: boolean;
  /** Absolute expiry (epoch ms); undefined = browser-session cookie; 0 = delete now. */
  expires?: number;
}

const SAME_SITE = { lax: 'Lax', strict: 'Strict', none: 'None' } as const;

export function serializeCookie(name: string, value: string, a: CookieAttributes): string {
  let out = `${name}=${value}; Path=${a.path}`;
  if (a.domain) out += `; Domain=${a.domain}`;
  if (a.expires !== undefined) {
    if (a.expires === 0) out += '; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT';
    else out += `; Expires=${new Date(a.expires).toUTCString()}`;
  }
  if (a.httpOnly) out += '; HttpOnly';
  if (a.secure) out += '; Secure';
  out += `; SameSite=${SAME_SITE[a.sameSite]}`;
  if (a.partitioned) out += '; Partitioned';
  return out;
}
