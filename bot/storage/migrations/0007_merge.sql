-- 合并 (issue 13 item 2): a ticket merged into a main ticket points at it. Set while the main
-- handles the problem for both firms and kept after the result reached the merged firm (the
-- ledger lists it under its main, stats count the problem once); cleared by 撤销合并 and
-- when the merged firm says the problem is not solved (it goes back to the team on its own).
ALTER TABLE tickets ADD COLUMN merged_into INTEGER REFERENCES tickets(id);
CREATE INDEX tickets_merged_into ON tickets(merged_into) WHERE merged_into IS NOT NULL;
