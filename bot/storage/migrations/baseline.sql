-- The schema at version 6: what migrations 0001-0006 make, in one script. A new database
-- (SQLite or PostgreSQL) starts here; an older SQLite file goes through the numbered
-- migrations. tests/storage/test_schema.py checks that both roads give the same schema.
-- version: 6

CREATE TABLE enterprises (
    id           INTEGER PRIMARY KEY,
    name         TEXT NOT NULL,
    credit_code  TEXT,
    town         TEXT,
    industry     TEXT,
    created_at   TEXT NOT NULL
);
CREATE UNIQUE INDEX enterprises_credit_code ON enterprises(credit_code) WHERE credit_code IS NOT NULL;
CREATE INDEX enterprises_name ON enterprises(name);

CREATE TABLE users (
    id               TEXT PRIMARY KEY,             -- '<channel>:<platform user id>'
    display_name     TEXT NOT NULL DEFAULT '',
    username         TEXT,
    enterprise_id    INTEGER REFERENCES enterprises(id),
    contact_name     TEXT,
    phone            TEXT,
    is_staff         INTEGER NOT NULL DEFAULT 0,
    private_started  INTEGER NOT NULL DEFAULT 0,
    reg_step         TEXT,
    reg_data         TEXT NOT NULL DEFAULT '{}',
    awaiting         TEXT,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL
);

CREATE TABLE bindings (
    chat_id    TEXT PRIMARY KEY,                   -- '<channel>:<platform chat id>'
    team_id    TEXT NOT NULL UNIQUE,
    title      TEXT,
    bound_by   TEXT,
    bound_at   TEXT NOT NULL
);

CREATE TABLE team_leads (
    team_id    TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL,
    name       TEXT,
    set_at     TEXT NOT NULL
);

CREATE TABLE tickets (
    id                INTEGER PRIMARY KEY,
    number            TEXT UNIQUE,
    state             TEXT NOT NULL,
    channel           TEXT NOT NULL DEFAULT 'telegram',
    reporter_id       TEXT NOT NULL REFERENCES users(id),
    enterprise_id     INTEGER REFERENCES enterprises(id),
    text              TEXT NOT NULL DEFAULT '',
    summary           TEXT NOT NULL DEFAULT '',
    request_type      TEXT NOT NULL DEFAULT '求助',
    team_id           TEXT,
    co_teams          TEXT NOT NULL DEFAULT '[]',
    predicted_team    TEXT,
    domain_words      TEXT NOT NULL DEFAULT '[]',
    confidence        REAL NOT NULL DEFAULT 0,
    classified_by     TEXT NOT NULL DEFAULT 'auto',
    urgency           TEXT NOT NULL DEFAULT 'normal',
    confidential      INTEGER NOT NULL DEFAULT 0,
    location          TEXT,
    created_at        TEXT NOT NULL,
    submitted_at      TEXT,
    dispatched_at     TEXT,
    due_at            TEXT,
    claimed_by        TEXT,
    claimed_by_name   TEXT,
    claimed_at        TEXT,
    first_contact_at  TEXT,
    result_text       TEXT,
    resolved_status   TEXT,
    satisfaction      TEXT,
    rated_at          TEXT,
    resolved_at       TEXT,
    reopen_count      INTEGER NOT NULL DEFAULT 0,
    return_count      INTEGER NOT NULL DEFAULT 0,
    extension_count   INTEGER NOT NULL DEFAULT 0,
    urge_count        INTEGER NOT NULL DEFAULT 0,
    supervise_count   INTEGER NOT NULL DEFAULT 0,
    leader_note       TEXT,
    latest_progress   TEXT,
    closed_at         TEXT,
    closed_by         TEXT,
    close_type        TEXT,
    warn_level        TEXT NOT NULL DEFAULT 'green',
    undelivered       INTEGER NOT NULL DEFAULT 0,
    updated_at        TEXT NOT NULL,
    claim_due_at      TEXT,
    first_contact_due_at TEXT,
    resolve_workdays  REAL
);
CREATE INDEX tickets_state ON tickets(state);
CREATE INDEX tickets_team_state ON tickets(team_id, state);
CREATE INDEX tickets_reporter ON tickets(reporter_id, state);
CREATE INDEX tickets_enterprise ON tickets(enterprise_id);
CREATE INDEX tickets_submitted ON tickets(submitted_at);
CREATE INDEX tickets_closed ON tickets(closed_at);
CREATE UNIQUE INDEX tickets_one_draft ON tickets(reporter_id) WHERE state = 'draft';
CREATE INDEX tickets_team_submitted ON tickets(team_id, submitted_at);
CREATE INDEX tickets_due_open ON tickets(state, due_at);
CREATE INDEX tickets_stats ON tickets(
    submitted_at, state, team_id, satisfaction, close_type, claimed_at, claim_due_at,
    first_contact_at, first_contact_due_at, resolved_at, closed_at, due_at, resolve_workdays,
    return_count, reopen_count, supervise_count, predicted_team, enterprise_id
);

CREATE TABLE attachments (
    id          INTEGER PRIMARY KEY,
    ticket_id   INTEGER NOT NULL REFERENCES tickets(id),
    kind        TEXT NOT NULL,
    file_id     TEXT NOT NULL,
    caption     TEXT,
    created_at  TEXT NOT NULL
);
CREATE INDEX attachments_ticket ON attachments(ticket_id);

CREATE TABLE ticket_events (
    id          INTEGER PRIMARY KEY,
    ticket_id   INTEGER NOT NULL REFERENCES tickets(id),
    actor_id    TEXT,
    action      TEXT NOT NULL,
    from_state  TEXT,
    to_state    TEXT,
    payload     TEXT NOT NULL DEFAULT '{}',
    at          TEXT NOT NULL
);
CREATE INDEX ticket_events_ticket ON ticket_events(ticket_id, id);
CREATE TRIGGER ticket_events_no_update BEFORE UPDATE ON ticket_events
BEGIN SELECT RAISE(ABORT, 'ticket_events is append-only'); END;
CREATE TRIGGER ticket_events_no_delete BEFORE DELETE ON ticket_events
BEGIN SELECT RAISE(ABORT, 'ticket_events is append-only'); END;

CREATE TABLE seen_messages (
    chat_id     TEXT NOT NULL,
    message_id  TEXT NOT NULL,
    ticket_id   INTEGER,
    PRIMARY KEY (chat_id, message_id)
);

CREATE TABLE message_links (
    chat_id     TEXT NOT NULL,
    message_id  TEXT NOT NULL,
    ticket_id   INTEGER NOT NULL REFERENCES tickets(id),
    purpose     TEXT NOT NULL,
    PRIMARY KEY (chat_id, message_id)
);
CREATE INDEX message_links_ticket ON message_links(ticket_id, purpose);

CREATE TABLE outbox (
    id            INTEGER PRIMARY KEY,
    chat_id       TEXT,                    -- NULL: a target resolved at send time (see target)
    target        TEXT,                    -- e.g. 'team:finance', 'coordinator', 'user:telegram:42'
    kind          TEXT NOT NULL,
    ticket_id     INTEGER REFERENCES tickets(id),
    payload       TEXT NOT NULL DEFAULT '{}',
    status        TEXT NOT NULL DEFAULT 'pending',
    attempts      INTEGER NOT NULL DEFAULT 0,
    next_at       TEXT NOT NULL,
    message_id    TEXT,
    error         TEXT,
    created_at    TEXT NOT NULL,
    sent_at       TEXT
);
CREATE INDEX outbox_due ON outbox(status, next_at);
CREATE INDEX outbox_ticket ON outbox(ticket_id);

CREATE TABLE inbox (
    update_id    INTEGER PRIMARY KEY,
    payload      TEXT NOT NULL,
    received_at  TEXT NOT NULL,
    handled_at   TEXT
);
CREATE INDEX inbox_pending ON inbox(handled_at) WHERE handled_at IS NULL;
CREATE INDEX inbox_handled ON inbox(handled_at) WHERE handled_at IS NOT NULL;

CREATE TABLE reminders_sent (
    ticket_id  INTEGER NOT NULL REFERENCES tickets(id),
    key        TEXT NOT NULL,
    at         TEXT NOT NULL,
    PRIMARY KEY (ticket_id, key)
);

CREATE TABLE corrections (
    id          INTEGER PRIMARY KEY,
    ticket_id   INTEGER REFERENCES tickets(id),
    text        TEXT NOT NULL,
    predicted   TEXT NOT NULL,
    final       TEXT NOT NULL,
    source      TEXT NOT NULL,
    at          TEXT NOT NULL
);

CREATE TABLE counters (
    name   TEXT PRIMARY KEY,
    value  INTEGER NOT NULL
);

CREATE TABLE audit_log (
    id        INTEGER PRIMARY KEY,
    actor_id  TEXT,
    action    TEXT NOT NULL,
    payload   TEXT NOT NULL DEFAULT '{}',
    at        TEXT NOT NULL
);
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;

CREATE TABLE extensions (
    id          INTEGER PRIMARY KEY,
    ticket_id   INTEGER NOT NULL REFERENCES tickets(id),
    kind        TEXT NOT NULL,
    workdays    INTEGER,
    reason      TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    status      TEXT NOT NULL DEFAULT 'pending',
    decided_by  TEXT,
    created_at  TEXT NOT NULL,
    decided_at  TEXT
);
CREATE INDEX extensions_ticket ON extensions(ticket_id);

CREATE TABLE wecom_inbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    received_at TEXT NOT NULL,
    handled_at TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    error TEXT
);
CREATE INDEX wecom_inbox_unhandled ON wecom_inbox(handled_at, id);

CREATE TABLE wecom_kf_cursor (
    open_kfid TEXT PRIMARY KEY,
    cursor TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE wecom_cards (
    message_id TEXT PRIMARY KEY,
    chat_id TEXT NOT NULL,
    task_id TEXT NOT NULL UNIQUE,
    userids TEXT NOT NULL,
    response_code TEXT,
    updated_at TEXT NOT NULL
);
