import type { IncomingMessage } from 'node:http';
import { isIP } from 'node:net';

/** The client IP: the socket peer, or the first `X-Forwarded-For` hop when the proxy is trusted. */
export function clientIp(req: IncomingMessage, trustProxy: boolean): string | null {
  if (trustProxy) {
    const xff = req.headers['x-forwarded-for'];
    const first = (Array.isArray(xff) ? xff[0] : xff)?.split(',')[0]?.trim();
    if (first && isIP(normalizeIp(first))) return normalizeIp(first);
  }
  const peer = req.socket?.remoteAddress;
  return peer ? normalizeIp(peer) : null;
}

/** True when the request reached us over TLS, or (trusted proxy only) `X-Forwarded-Proto: https`. */
export function isSecureRequest(req: IncomingMessage, trustProxy: boolean): boolean {
  if ((req.socket as { encrypted?: boolean } | undefined)?.encrypted) return true;
  if (!trustProxy) return false;
  const proto = req.headers['x-forwarded-proto'];
  const first = (Array.isArray(proto) ? proto[0] : proto)?.split(',')[0]?.trim().toLowerCase();
  return first === 'https';
}

export function userAgent(req: IncomingMessage): string | null {
  const ua = req.headers['user-agent'];
  // Bounded so a huge header can't bloat every stored record.
  return typeof ua === 'string' ? ua.slice(0, 512) : null;
}

function normalizeIp(ip: string): string {
  return ip.startsWith('::ffff:') && isIP(ip.slice(7)) === 4 ? ip.slice(7) : ip;
}
