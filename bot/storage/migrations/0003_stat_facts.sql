-- Clock values that never change once known, stored so the Friday metrics are SQL aggregates:
-- the 签收 deadline (set at dispatch), the first-contact deadline (set at 签收) and the working
-- days from submission to 办结 (set at 办结).
ALTER TABLE tickets ADD COLUMN claim_due_at TEXT;
ALTER TABLE tickets ADD COLUMN first_contact_due_at TEXT;
ALTER TABLE tickets ADD COLUMN resolve_workdays REAL;
CREATE INDEX tickets_team_submitted ON tickets(team_id, submitted_at);
CREATE INDEX tickets_due_open ON tickets(state, due_at);
