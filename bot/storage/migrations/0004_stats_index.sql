-- A covering index for the Friday metrics: the grouped aggregate over a period reads this
-- index alone, in submission order, instead of visiting every ticket row (bench/stats.py).
CREATE INDEX tickets_stats ON tickets(
    submitted_at, state, team_id, satisfaction, close_type, claimed_at, claim_due_at,
    first_contact_at, first_contact_due_at, resolved_at, closed_at, due_at, resolve_workdays,
    return_count, reopen_count, supervise_count, predicted_team, enterprise_id
);
