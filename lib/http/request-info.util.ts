import type { IncomingMessage } from 'node:http';
import { isIP } from 'node:net';

/**
 * The client IP. `trustedProxies` is how many proxies in front of the app are believed: 0, the
 * socket peer; N, the `X-Forwarded-For` entry N from the right (what the farthest trusted proxy
 * saw; entries further left were written by the client or proxies we do not trust); Infinity,
 * the left-most entry. An entry that is not an IP address gives the socket peer.
 */
export function clientIp(req: IncomingMessage, trustedProxies: number): string | null {
  if (trustedProxies > 0) {
    const xff = req.headers['x-forwarded-for'];
    const list = (Array.isArray(xff) ? xff.join(',') : xff)?.split(',');
    if (list !== undefined) {
      // Empty entries are not hops.
      const hops = list.map((entry) => entry.trim()).filter((entry) => entry !== '');
      const picked = hops.length === 0 ? undefined : hops[hops.length - Math.min(trustedProxies, hops.length)];
      const chosen = picked === undefined ? undefined : normalizeIp(withoutPort(picked));
      if (chosen !== undefined && isIP(chosen)) return chosen;
    }
  }
  const peer = req.socket?.remoteAddress;
  return peer ? normalizeIp(peer) : null;
}

/** True when the request reached us over TLS, or (trusted proxy only) `X-Forwarded-Proto: https`. */
export function isSecureRequest(req: IncomingMessage, trustedProxies: number): boolean {
  if ((req.socket as { encrypted?: boolean } | undefined)?.encrypted) return true;
  if (trustedProxies <= 0) return false;
  const proto = req.headers['x-forwarded-proto'];
  const first = (Array.isArray(proto) ? proto[0] : proto)?.split(',')[0]?.trim().toLowerCase();
  return first === 'https';
}

export function userAgent(req: IncomingMessage): string | null {
  const ua = req.headers['user-agent'];
  // Bounded so a huge header can't bloat every stored record.
  return typeof ua === 'string' ? ua.slice(0, 512) : null;
}

/** Some proxies append `ip:port` (`[ipv6]:port`): the address without it. */
function withoutPort(entry: string): string {
  if (entry.startsWith('[')) {
    const end = entry.indexOf(']');
    return end > 0 ? entry.slice(1, end) : entry;
  }
  // One colon is IPv4 with a port; IPv6 has several.
  const colon = entry.indexOf(':');
  return colon > 0 && colon === entry.lastIndexOf(':') ? entry.slice(0, colon) : entry;
}

function normalizeIp(ip: string): string {
  return ip.startsWith('::ffff:') && isIP(ip.slice(7)) === 4 ? ip.slice(7) : ip;
}
