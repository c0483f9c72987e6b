/** The options as passed to forRoot/forRootAsync. */
export const SESSION_MODULE_OPTIONS = Symbol('SESSION_MODULE_OPTIONS');
/** The validated options with defaults (`ResolvedSessionOptions`). */
export const SESSION_RESOLVED_OPTIONS = Symbol('SESSION_RESOLVED_OPTIONS');
/** Metadata key of `@SessionReadOnly()`. */
export const SESSION_READ_ONLY = 'ml-session:read-only';
/** Metadata key of `@SkipCsrf()`. */
export const SKIP_CSRF = 'ml-session:skip-csrf';
