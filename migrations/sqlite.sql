-- Session table of the database driver, SQLite 3.35+ (better-sqlite3 12.x bundles a newer one).
-- Same DDL as the TypeORM migration in create-sessions-table.migration.ts (a test keeps them in sync).
-- Another table name: replace every "sessions" below and set the driver's `database.table` to match.
-- Times are epoch milliseconds (INTEGER); see docs/drivers/database.md for the reasons.

CREATE TABLE sessions (
  id TEXT NOT NULL PRIMARY KEY,    -- ml_sess_ + 43 base64url characters (51)
  user_id TEXT NULL,               -- numeric user IDs are stored as strings
  ip_address TEXT NULL,
  user_agent TEXT NULL,
  payload TEXT NULL,               -- serialized data; NULL only on a lock placeholder row (reads as absent)
  csrf_token TEXT NULL,
  created_at INTEGER NOT NULL,
  last_activity INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,     -- absolute cutoff
  evict_at INTEGER NOT NULL,       -- min(idle cutoff, expires_at) + grace: read() and gc() use it
  lock_token TEXT NULL,            -- lease owner's random token (NULL = unlocked)
  lock_expires_at INTEGER NULL     -- lease end, on the database clock
);

CREATE INDEX sessions_user_id_idx ON sessions (user_id);

CREATE INDEX sessions_evict_at_idx ON sessions (evict_at);
