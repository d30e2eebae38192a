-- Keysmith schema, version 5: protection against edits made outside Keysmith.
--
-- mac: HMAC-SHA-256 under a key derived from the pepper (which is never in this file) over
-- the fields that decide access (integrity.rs). A row whose mac does not match is refused by
-- the app, the CLI and the verifier. Rows from before this version get theirs the first time
-- Keysmith opens the database with the pepper (audited as "rows_sealed").
ALTER TABLE members ADD COLUMN mac BLOB CHECK (mac IS NULL OR length(mac) = 32);
ALTER TABLE api_keys ADD COLUMN mac BLOB CHECK (mac IS NULL OR length(mac) = 32);

-- Audit entries from this version on are chained with HMAC-SHA-256 under the audit key (in
-- the OS keyring, apart from the pepper), and name the row they changed and its mac after
-- the change, so a row put back as it was earlier no longer matches the log.
ALTER TABLE audit_log ADD COLUMN keyed INTEGER NOT NULL DEFAULT 0 CHECK (keyed IN (0, 1));
ALTER TABLE audit_log ADD COLUMN subject TEXT;      -- 'member:<id>' or 'key:<id>'
ALTER TABLE audit_log ADD COLUMN state BLOB CHECK (state IS NULL OR length(state) = 32);

CREATE INDEX audit_log_subject ON audit_log (subject);
