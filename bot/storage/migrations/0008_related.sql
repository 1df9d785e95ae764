-- Related reports (issue 13).
-- related_links: at submission, the open recent tickets the finder found probably the same
-- problem as the new one (ticket_id, the new one; related_id, the earlier one), with the score
-- and why: place ('same' | 'near' | ''), the deciding words both share (JSON), same firm.
CREATE TABLE related_links (
    ticket_id INTEGER NOT NULL REFERENCES tickets(id),
    related_id INTEGER NOT NULL REFERENCES tickets(id),
    score REAL NOT NULL,
    place TEXT NOT NULL DEFAULT '',
    words TEXT NOT NULL DEFAULT '[]',
    same_firm INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    PRIMARY KEY (ticket_id, related_id)
);
CREATE INDEX related_links_related ON related_links(related_id);
-- A burst: related reports from one town within a short window. The coordinators are alerted
-- once per burst (alerted_at); later related reports join it without a second alert.
CREATE TABLE related_bursts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    town TEXT NOT NULL,
    topic TEXT NOT NULL,
    started_at TEXT NOT NULL,
    last_at TEXT NOT NULL,
    alerted_at TEXT
);
CREATE INDEX related_bursts_town ON related_bursts(town, last_at);
CREATE TABLE related_burst_members (
    burst_id INTEGER NOT NULL REFERENCES related_bursts(id),
    ticket_id INTEGER NOT NULL REFERENCES tickets(id),
    PRIMARY KEY (burst_id, ticket_id)
);
CREATE INDEX related_burst_members_ticket ON related_burst_members(ticket_id);
