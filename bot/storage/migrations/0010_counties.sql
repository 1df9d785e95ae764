-- Counties as tenants (issue 10): one deployment serves several counties (or districts). A firm
-- belongs to one county and its tickets with it; each county has its own team groups,
-- coordinators' group and team leads. A single-county deployment keeps the empty county ''
-- everywhere, so nothing changes for it. The leaders' group of a city or province is bound
-- with county ''.
ALTER TABLE enterprises ADD COLUMN county TEXT NOT NULL DEFAULT '';
ALTER TABLE tickets ADD COLUMN county TEXT NOT NULL DEFAULT '';
CREATE INDEX tickets_county_submitted ON tickets(county, submitted_at);

CREATE TABLE bindings_new (
    chat_id    TEXT PRIMARY KEY,                   -- '<channel>:<platform chat id>'
    county     TEXT NOT NULL DEFAULT '',
    team_id    TEXT NOT NULL,
    title      TEXT,
    bound_by   TEXT,
    bound_at   TEXT NOT NULL,
    UNIQUE (county, team_id)
);
INSERT INTO bindings_new (chat_id, county, team_id, title, bound_by, bound_at)
    SELECT chat_id, '', team_id, title, bound_by, bound_at FROM bindings;
DROP TABLE bindings;
ALTER TABLE bindings_new RENAME TO bindings;

CREATE TABLE team_leads_new (
    county     TEXT NOT NULL DEFAULT '',
    team_id    TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    name       TEXT,
    set_at     TEXT NOT NULL,
    PRIMARY KEY (county, team_id)
);
INSERT INTO team_leads_new (county, team_id, user_id, name, set_at)
    SELECT '', team_id, user_id, name, set_at FROM team_leads;
DROP TABLE team_leads;
ALTER TABLE team_leads_new RENAME TO team_leads;
