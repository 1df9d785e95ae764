-- Province scale (bench/province.py: 1,000,000 tickets across 20 counties). The Friday metrics'
-- grouped query reads a period of tickets from one covering index instead of visiting each
-- ticket row: tickets_stats lacked merged_into (added by 0007, which every period query tests)
-- and county (0010), so each row of the period was also looked up in the table; and a
-- county's figures started from tickets_county_submitted and then read every row of that
-- county's period. The same columns now come in two orders: by submission time for the whole
-- deployment (per county too, for the comparison), by county then submission time for one
-- county (its /stats, digest and ledger), which replaces tickets_county_submitted.
DROP INDEX tickets_stats;
CREATE INDEX tickets_stats ON tickets(
    submitted_at, state, team_id, satisfaction, close_type, claimed_at, claim_due_at,
    first_contact_at, first_contact_due_at, resolved_at, closed_at, due_at, resolve_workdays,
    return_count, reopen_count, supervise_count, predicted_team, enterprise_id, merged_into,
    county
);
DROP INDEX tickets_county_submitted;
CREATE INDEX tickets_county_stats ON tickets(
    county, submitted_at, state, team_id, satisfaction, close_type, claimed_at, claim_due_at,
    first_contact_at, first_contact_due_at, resolved_at, closed_at, due_at, resolve_workdays,
    return_count, reopen_count, supervise_count, predicted_team, enterprise_id, merged_into
);
-- Merged tickets of a period (PERIOD_MERGED) from a partial index of their own in submission
-- order: the partial index on merged_into alone made every period read every merged ticket
-- the deployment ever had (20,000 at province scale: 90 ms for one county's year, now 7 ms).
CREATE INDEX tickets_merged_period ON tickets(submitted_at, county, state, team_id)
    WHERE merged_into IS NOT NULL;
-- The open tickets now, per team and per county, and the overdue ones, read from this index
-- alone (the per-county overdue count scanned a whole covering index: 490 ms, now 14 ms).
DROP INDEX tickets_due_open;
CREATE INDEX tickets_due_open ON tickets(state, due_at, county, team_id, merged_into);
