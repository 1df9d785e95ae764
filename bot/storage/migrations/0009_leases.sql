-- Several bot processes on one PostgreSQL database (issue 10): one of them leads — polls
-- Telegram, serves WeCom's callbacks, delivers the outbox and runs the scheduled work — and
-- renews its lease every few seconds; the others wait and take over when it lapses. `until` is
-- UTC text of the database's clock (bot.storage.lease).
CREATE TABLE leases (
    name    TEXT PRIMARY KEY,
    holder  TEXT NOT NULL,
    until   TEXT NOT NULL
);
