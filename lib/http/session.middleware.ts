import { Injectable, type NestMiddleware } from '@nestjs/common';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { SessionLifecycle } from './session-lifecycle.service.js';

/**
 * Mounted on every route by `SessionModule`: runs before guards, so guards, pipes and handlers
 * all see a loaded session. Lock + read happen here; commit happens in `SessionInterceptor`.
 */
@Injectable()
export class SessionMiddleware implements NestMiddleware {
  protected readonly readOnly: boolean = false;

  constructor(private readonly lifecycle: SessionLifecycle) {}

  async use(req: IncomingMessage, res: ServerResponse, next: (error?: unknown) => void): Promise<void> {
    // A client that left while we waited for its lock gets nothing more: no handler runs.
    if (await this.lifecycle.begin(req, res, this.readOnly)) next();
  }
}

/** The same, for routes marked `@SessionReadOnly()`: read without lock, never write. */
@Injectable()
export class SessionReadOnlyMiddleware extends SessionMiddleware {
  protected override readonly readOnly: boolean = true;
}
