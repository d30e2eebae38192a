-- A key's or member's latest recorded state is "the entry with this subject and the highest
-- seq". With an index on subject alone the planner may instead walk the primary key backwards
-- from the newest entry and filter on subject (it assumes matches are spread evenly), which
-- costs the whole log for an old key: listing 10k keys under a steady write load took up to
-- 19 s. On (subject, seq) every lookup is one index probe. (SQLite needs no change: its
-- index on subject carries the rowid, which is seq.)
CREATE INDEX audit_log_subject_seq ON audit_log (subject, seq);
DROP INDEX audit_log_subject;
