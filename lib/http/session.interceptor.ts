import { Injectable, Logger, type CallHandler, type ExecutionContext, type NestInterceptor } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { Observable, concat, defer, ignoreElements, type Subscription } from 'rxjs';
import { SESSION_READ_ONLY } from '../core/session.constants.js';
import { SessionLifecycle, getSessionContext, type SessionRequestContext } from './session-lifecycle.service.js';
import { describeError } from '../core/session-id.util.js';

/** Nest's `@Sse()` marker (SSE_METADATA in @nestjs/common/constants). */
const SSE_METADATA = '__sse__';

/**
 * Commits the session before the response is written: after the handler's value, after its
 * error (so a flash message survives an error redirect), or on completion without a value.
 * If the handler's stream is dropped unfinished, the lock is released without a commit (only a
 * save() already in flight lands).
 */
@Injectable()
export class SessionInterceptor implements NestInterceptor {
  private readonly logger = new Logger('Session');
  /**
   * Per handler and controller class: its `@SessionReadOnly()` and `@Sse()` marks (metadata never
   * changes after start-up). Keyed by both, since one inherited handler may serve a read-only and a
   * locking controller.
   */
  private readonly marks = new WeakMap<object, WeakMap<object, { readOnly: boolean; sse: boolean }>>();

  constructor(
    private readonly lifecycle: SessionLifecycle,
    private readonly reflector: Reflector,
  ) {}

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    if (context.getType() !== 'http') return next.handle();
    const http = context.switchToHttp();
    const req = http.getRequest<{ raw?: unknown; session?: unknown }>();
    const ctx = getSessionContext(req);
    if (!ctx || ctx.phase !== 'loaded') return next.handle();
    ctx.phase = 'handling';
    const res = http.getResponse<unknown>();
    const { readOnly, sse } = this.marksOf(context);
    if (ctx.handle.readOnly !== readOnly) return this.afterMatch(ctx, req, res, readOnly, () => this.run(ctx, next, res, sse));
    return this.run(ctx, next, res, sse);
  }

  /**
   * Switches the session's mode (an upgrade may wait for the lock), then runs the rest. A
   * subscriber that leaves meanwhile (a closed event stream, an outer `timeout()`) never
   * subscribes to the rest, so the lock the upgrade got is released here.
   */
  private afterMatch(ctx: SessionRequestContext, req: { raw?: unknown }, res: unknown, readOnly: boolean, rest: () => Observable<unknown>): Observable<unknown> {
    return new Observable<unknown>((subscriber) => {
      let gone = false;
      let inner: Subscription | undefined;
      this.lifecycle.matchHandler(ctx, req, res, readOnly).then(
        () => {
          if (gone) void this.lifecycle.abandon(ctx);
          else inner = rest().subscribe(subscriber);
        },
        (err: unknown) => {
          if (gone) void this.lifecycle.abandon(ctx);
          else subscriber.error(err);
        },
      );
      return () => {
        gone = true;
        inner?.unsubscribe();
      };
    });
  }

  private marksOf(context: ExecutionContext): { readOnly: boolean; sse: boolean } {
    const handler = context.getHandler();
    const type = context.getClass();
    let byClass = this.marks.get(handler);
    if (!byClass) this.marks.set(handler, (byClass = new WeakMap()));
    let marks = byClass.get(type);
    if (!marks) {
      marks = {
        readOnly: this.reflector.getAllAndOverride<boolean>(SESSION_READ_ONLY, [handler, type]) === true,
        sse: Reflect.getMetadata(SSE_METADATA, handler) === true,
      };
      byClass.set(type, marks);
    }
    return marks;
  }

  private run(ctx: SessionRequestContext, next: CallHandler, res: unknown, isSse: boolean): Observable<unknown> {
    // A read-only session with no header to set (the usual case) has nothing left to commit:
    // hand the handler's stream to Nest as it is. With headers (cookies, noStore) it goes the
    // usual way, so that they are set after the handler and win over what it set.
    if (this.lifecycle.finishSilentReadOnly(ctx)) return next.handle();
    this.lifecycle.useResponse(ctx, res);
    let started = false;
    const commitOnce = (): Promise<void> => {
      if (started) return Promise.resolve();
      started = true;
      return this.lifecycle.commit(ctx, res);
    };
    if (isSse) {
      // An event stream writes its headers at once and may stay open for hours: commit and unlock
      // before it starts (the handler reads the session; changes there are refused clearly).
      return concat(defer(() => commitOnce()).pipe(ignoreElements()), defer(() => next.handle()));
    }
    // One hand-written Observable instead of an operator chain: this runs on every request.
    // Values, completion and errors are handled in arrival order; each waits for the commit.
    return new Observable<unknown>((subscriber) => {
      let chain: Promise<void> = Promise.resolve();
      let failed = false;
      const enqueue = (step: () => Promise<void>): void => {
        chain = chain.then(step).catch((err: unknown) => {
          if (failed) return;
          failed = true;
          subscriber.error(err);
        });
      };
      const inner = next.handle().subscribe({
        next: (value) =>
          enqueue(async () => {
            await commitOnce();
            if (!failed) subscriber.next(value);
          }),
        complete: () =>
          enqueue(async () => {
            await commitOnce();
            if (!failed) subscriber.complete();
          }),
        error: (err: unknown) =>
          enqueue(async () => {
            try {
              await commitOnce();
            } catch (commitErr) {
              if (commitErr !== err) this.logger.error(`Session commit after a failed handler also failed: ${describeError(commitErr)}`);
            }
            throw err;
          }),
      });
      return () => {
        inner.unsubscribe();
        // Dropped before the handler finished: nothing to commit, but the lock must go.
        if (!started) {
          started = true;
          void this.lifecycle.abandon(ctx, 'dropped');
        }
      };
    });
  }
}
