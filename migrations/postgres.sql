-- Session table of the database driver, PostgreSQL 12+.
-- Same DDL as the TypeORM migration in create-sessions-table.migration.ts (a test keeps them in sync).
-- Another table name: replace every "sessions" below and set the driver's `database.table` to match.
-- Times are epoch milliseconds (BIGINT); see docs/drivers/database.md for the reasons.

CREATE TABLE sessions (
  id VARCHAR(64) NOT NULL PRIMARY KEY,  -- ml_sess_ + 43 base64url characters (51)
  user_id VARCHAR(255) NULL,            -- numeric user IDs are stored as strings
  ip_address VARCHAR(255) NULL,
  user_agent TEXT NULL,
  payload TEXT NULL,                    -- serialized data; NULL only on a lock placeholder row (reads as absent)
  csrf_token VARCHAR(255) NULL,
  created_at BIGINT NOT NULL,
  last_activity BIGINT NOT NULL,
  expires_at BIGINT NOT NULL,           -- absolute cutoff
  evict_at BIGINT NOT NULL,             -- min(idle cutoff, expires_at) + grace: read() and gc() use it
  lock_token VARCHAR(64) NULL,          -- lease owner's random token (NULL = unlocked)
  lock_expires_at BIGINT NULL           -- lease end, on the database clock
);

CREATE INDEX sessions_user_id_idx ON sessions (user_id);

CREATE INDEX sessions_evict_at_idx ON sessions (evict_at);
