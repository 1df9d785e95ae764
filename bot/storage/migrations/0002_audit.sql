-- Actions that are not about one ticket (exports, digests), for the audit trail.
CREATE TABLE audit_log (
    id        INTEGER PRIMARY KEY,
    actor_id  INTEGER,
    action    TEXT NOT NULL,
    payload   TEXT NOT NULL DEFAULT '{}',
    at        TEXT NOT NULL
);
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;

-- Handled updates older than a week are pruned from the inbox at start.
CREATE INDEX inbox_handled ON inbox(handled_at) WHERE handled_at IS NOT NULL;
