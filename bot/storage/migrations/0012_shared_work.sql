-- Several bot processes share the work on one PostgreSQL (issue 10). Each chat's stored updates
-- are handled by one process at a time, in order, so each stored update names its chat
-- ('<channel>:<chat id>', '' for an update without one; rows stored before this version: '').
ALTER TABLE inbox ADD COLUMN chat_key TEXT NOT NULL DEFAULT '';
CREATE INDEX inbox_pending_chats ON inbox(chat_key, update_id) WHERE handled_at IS NULL;

-- The server session (pg_backend_pid()) of the lease's holder: a standby takes the lease at once
-- when that session has ended (the holder died and its connection closed), not only when the
-- lease lapses. Unused on SQLite.
ALTER TABLE leases ADD COLUMN pid INTEGER;

-- The sending limits' budget, shared by the processes (Telegram: 30 messages a second in all,
-- 20 a minute per group): a token bucket per key, `tokens` left at `at` (seconds, the
-- database's clock) refilling at `rate` a second. Unused on SQLite (one process keeps its own).
CREATE TABLE send_budget (
    key     TEXT PRIMARY KEY,
    tokens  REAL NOT NULL,
    at      REAL NOT NULL,
    rate    REAL NOT NULL
);
