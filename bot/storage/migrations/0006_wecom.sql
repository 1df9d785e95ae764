-- The WeCom / 微信客服 channel.
-- wecom_inbox: every callback and every message pulled with kf/sync_msg, stored before it is
-- acknowledged (a callback's 200, the next kf cursor), keyed by WeCom's identity of it (MsgId,
-- the event's identity, the kf msgid) so that retries are handled once.
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
-- Where kf/sync_msg stopped, per 微信客服 account: moved in the transaction that stores the page.
CREATE TABLE wecom_kf_cursor (
    open_kfid TEXT PRIMARY KEY,
    cursor TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
-- A template card as the workflow knows it (message_id, the id it was linked under) and as
-- WeCom does now (task_id, the members who got it, the response_code good for one update).
-- A card that can no longer be updated is replaced by a new one under the same message_id.
CREATE TABLE wecom_cards (
    message_id TEXT PRIMARY KEY,
    chat_id TEXT NOT NULL,
    task_id TEXT NOT NULL UNIQUE,
    userids TEXT NOT NULL,
    response_code TEXT,
    updated_at TEXT NOT NULL
);
