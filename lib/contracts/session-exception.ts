import { HttpException, HttpStatus } from '@nestjs/common';

/**
 * Any session failure. It is an `HttpException` so that Nest answers with a clean status
 * (default 500; 503 when the store is unreachable) instead of an unhandled error.
 */
export class SessionException extends HttpException {
  constructor(message: string, status: number = HttpStatus.INTERNAL_SERVER_ERROR, options?: { cause?: unknown }) {
    super({ statusCode: status, error: 'Session Error', message }, status, options);
    this.name = 'SessionException';
  }
}

/**
 * The session lock could not be taken within `lock.waitTimeout`, or a holder lost its lock
 * (TTL passed and another request took it over). Answered with 423 Locked and `Retry-After`.
 */
export class SessionLockException extends SessionException {
  constructor(message = 'The session is locked by another request; retry shortly.', options?: { cause?: unknown }) {
    super(message, 423, options);
    this.name = 'SessionLockException';
  }
}

/** The session store did not answer (connection refused, timeout). Answered with 503. */
export class SessionStoreUnavailableException extends SessionException {
  constructor(message = 'The session store is unavailable; retry shortly.', options?: { cause?: unknown }) {
    super(message, HttpStatus.SERVICE_UNAVAILABLE, options);
    this.name = 'SessionStoreUnavailableException';
  }
}
