-- Identities carry their channel: every user, chat and message id is text of the form
-- '<channel>:<the platform's id>' ('telegram:42', 'telegram:-100123', 'wecom:zhangsan'), so a
-- ticket can have its firm on one channel and its team on another. Until now every id was a
-- Telegram integer; they become 'telegram:<id>'. Message ids become text too (WeCom's are).
-- SQLite cannot change a column's type in place: each table is rebuilt and refilled.
-- (Migrations run with foreign keys off and are checked with foreign_key_check after.)

CREATE TABLE users_new (
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
-- awaiting is '<action>:<ticket id>:<chat id>': its chat id is qualified too.
INSERT INTO users_new SELECT 'telegram:' || id, display_name, username, enterprise_id,
    contact_name, phone, is_staff, private_started, reg_step, reg_data,
    CASE WHEN awaiting IS NULL THEN NULL
         ELSE substr(awaiting, 1, instr(awaiting, ':')
                  + instr(substr(awaiting, instr(awaiting, ':') + 1), ':'))
              || 'telegram:'
              || substr(substr(awaiting, instr(awaiting, ':') + 1),
                        instr(substr(awaiting, instr(awaiting, ':') + 1), ':') + 1) END,
    created_at, updated_at FROM users;
DROP TABLE users;
ALTER TABLE users_new RENAME TO users;

CREATE TABLE bindings_new (
    chat_id    TEXT PRIMARY KEY,                   -- '<channel>:<platform chat id>'
    team_id    TEXT NOT NULL UNIQUE,
    title      TEXT,
    bound_by   TEXT,
    bound_at   TEXT NOT NULL
);
INSERT INTO bindings_new SELECT 'telegram:' || chat_id, team_id, title,
    CASE WHEN bound_by IS NULL THEN NULL ELSE 'telegram:' || bound_by END, bound_at
    FROM bindings;
DROP TABLE bindings;
ALTER TABLE bindings_new RENAME TO bindings;

CREATE TABLE team_leads_new (
    team_id    TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL,
    name       TEXT,
    set_at     TEXT NOT NULL
);
INSERT INTO team_leads_new SELECT team_id, 'telegram:' || user_id, name, set_at FROM team_leads;
DROP TABLE team_leads;
ALTER TABLE team_leads_new RENAME TO team_leads;

CREATE TABLE tickets_new (
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
INSERT INTO tickets_new SELECT id, number, state, channel, 'telegram:' || reporter_id,
    enterprise_id, text, summary, request_type, team_id, co_teams, predicted_team, domain_words,
    confidence, classified_by, urgency, confidential, location, created_at, submitted_at,
    dispatched_at, due_at,
    CASE WHEN claimed_by IS NULL THEN NULL ELSE 'telegram:' || claimed_by END,
    claimed_by_name, claimed_at, first_contact_at, result_text, resolved_status, satisfaction,
    rated_at, resolved_at, reopen_count, return_count, extension_count, urge_count,
    supervise_count, leader_note, latest_progress, closed_at,
    CASE WHEN closed_by IS NULL THEN NULL ELSE 'telegram:' || closed_by END,
    close_type, warn_level, undelivered, updated_at, claim_due_at, first_contact_due_at,
    resolve_workdays FROM tickets;
DROP TABLE tickets;
ALTER TABLE tickets_new RENAME TO tickets;
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

CREATE TABLE ticket_events_new (
    id          INTEGER PRIMARY KEY,
    ticket_id   INTEGER NOT NULL REFERENCES tickets(id),
    actor_id    TEXT,
    action      TEXT NOT NULL,
    from_state  TEXT,
    to_state    TEXT,
    payload     TEXT NOT NULL DEFAULT '{}',
    at          TEXT NOT NULL
);
INSERT INTO ticket_events_new SELECT id, ticket_id,
    CASE WHEN actor_id IS NULL THEN NULL ELSE 'telegram:' || actor_id END,
    action, from_state, to_state, payload, at FROM ticket_events;
DROP TABLE ticket_events;
ALTER TABLE ticket_events_new RENAME TO ticket_events;
CREATE INDEX ticket_events_ticket ON ticket_events(ticket_id, id);
CREATE TRIGGER ticket_events_no_update BEFORE UPDATE ON ticket_events
BEGIN SELECT RAISE(ABORT, 'ticket_events is append-only'); END;
CREATE TRIGGER ticket_events_no_delete BEFORE DELETE ON ticket_events
BEGIN SELECT RAISE(ABORT, 'ticket_events is append-only'); END;

CREATE TABLE seen_messages_new (
    chat_id     TEXT NOT NULL,
    message_id  TEXT NOT NULL,
    ticket_id   INTEGER,
    PRIMARY KEY (chat_id, message_id)
);
INSERT INTO seen_messages_new SELECT 'telegram:' || chat_id, CAST(message_id AS TEXT), ticket_id
    FROM seen_messages;
DROP TABLE seen_messages;
ALTER TABLE seen_messages_new RENAME TO seen_messages;

CREATE TABLE message_links_new (
    chat_id     TEXT NOT NULL,
    message_id  TEXT NOT NULL,
    ticket_id   INTEGER NOT NULL REFERENCES tickets(id),
    purpose     TEXT NOT NULL,
    PRIMARY KEY (chat_id, message_id)
);
INSERT INTO message_links_new SELECT 'telegram:' || chat_id, CAST(message_id AS TEXT),
    ticket_id, purpose FROM message_links;
DROP TABLE message_links;
ALTER TABLE message_links_new RENAME TO message_links;
CREATE INDEX message_links_ticket ON message_links(ticket_id, purpose);

CREATE TABLE outbox_new (
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
INSERT INTO outbox_new SELECT id,
    CASE WHEN chat_id IS NULL THEN NULL ELSE 'telegram:' || chat_id END,
    CASE WHEN target LIKE 'user:%' THEN 'user:telegram:' || substr(target, 6)
         WHEN target LIKE 'chat:%' THEN 'chat:telegram:' || substr(target, 6)
         ELSE target END,
    kind, ticket_id, payload, status, attempts, next_at,
    CASE WHEN message_id IS NULL THEN NULL ELSE CAST(message_id AS TEXT) END,
    error, created_at, sent_at FROM outbox;
DROP TABLE outbox;
ALTER TABLE outbox_new RENAME TO outbox;
CREATE INDEX outbox_due ON outbox(status, next_at);
CREATE INDEX outbox_ticket ON outbox(ticket_id);

CREATE TABLE audit_log_new (
    id        INTEGER PRIMARY KEY,
    actor_id  TEXT,
    action    TEXT NOT NULL,
    payload   TEXT NOT NULL DEFAULT '{}',
    at        TEXT NOT NULL
);
INSERT INTO audit_log_new SELECT id,
    CASE WHEN actor_id IS NULL THEN NULL ELSE 'telegram:' || actor_id END,
    action, payload, at FROM audit_log;
DROP TABLE audit_log;
ALTER TABLE audit_log_new RENAME TO audit_log;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;

CREATE TABLE extensions_new (
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
INSERT INTO extensions_new SELECT id, ticket_id, kind, workdays, reason,
    'telegram:' || requested_by, status,
    CASE WHEN decided_by IS NULL THEN NULL ELSE 'telegram:' || decided_by END,
    created_at, decided_at FROM extensions;
DROP TABLE extensions;
ALTER TABLE extensions_new RENAME TO extensions;
CREATE INDEX extensions_ticket ON extensions(ticket_id);
