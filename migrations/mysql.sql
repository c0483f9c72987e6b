-- Session table of the database driver, MySQL 5.7+/8.x and MariaDB 10.3+ (InnoDB).
-- Same DDL as the TypeORM migration in create-sessions-table.migration.ts (a test keeps them in sync).
-- Another table name: replace every "sessions" below and set the driver's `database.table` to match.
-- Times are epoch milliseconds (BIGINT); see docs/drivers/database.md for the reasons.
-- utf8mb4_bin: exact, case-sensitive comparisons (user "Alice" is not user "alice"), emoji-safe payloads.

CREATE TABLE sessions (
  id VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,          -- case-sensitive base64url ID (51 chars)
  user_id VARCHAR(255) NULL,                                             -- numeric user IDs are stored as strings
  ip_address VARCHAR(255) NULL,
  user_agent TEXT NULL,
  payload MEDIUMTEXT NULL,                                               -- up to 16 MiB; NULL only on a lock placeholder row
  csrf_token VARCHAR(255) NULL,
  created_at BIGINT NOT NULL,
  last_activity BIGINT NOT NULL,
  expires_at BIGINT NOT NULL,                                            -- absolute cutoff
  evict_at BIGINT NOT NULL,                                              -- min(idle cutoff, expires_at) + grace: read() and gc() use it
  lock_token VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NULL,     -- lease owner's random token (NULL = unlocked)
  lock_expires_at BIGINT NULL,                                           -- lease end, on the database clock (UTC)
  PRIMARY KEY (id),
  INDEX sessions_user_id_idx (user_id),
  INDEX sessions_evict_at_idx (evict_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
