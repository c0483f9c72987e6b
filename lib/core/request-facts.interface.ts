/** What the HTTP layer tells the core about one request (the core never sees req/res). */
export interface RequestFacts {
  /** The well-formed session ID from the cookie, or null (absent or malformed). */
  cookieId: string | null;
  /** True when the request carried a session cookie at all (even a malformed one). */
  hadCookie: boolean;
  /** Client IP (X-Forwarded-For only when trustProxy), normalized; null if unknown. */
  ip: string | null;
  /** User-Agent header, or null. */
  userAgent: string | null;
}
