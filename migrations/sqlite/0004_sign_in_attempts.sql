-- Keysmith schema, version 4: sign-in throttling keyed by the name that was typed.
--
-- Every attempt, for a member who exists or not, counts against the name typed (trimmed,
-- NFC, lowercase), so "try again in …" never tells which names are members (OWASP
-- Authentication Cheat Sheet). The attempt is counted before the passphrase is checked, in
-- the same write transaction as the throttle check, so parallel attempts each count.
CREATE TABLE sign_in_attempts (
    name_key  TEXT    PRIMARY KEY NOT NULL,
    failed    INTEGER NOT NULL,          -- attempts since the last successful sign-in
    next_at   INTEGER,                   -- no attempt is checked before this time (Unix ms)
    last_at   INTEGER NOT NULL           -- the latest attempt, for pruning idle rows
);

CREATE INDEX sign_in_attempts_last_at ON sign_in_attempts (last_at);

-- The per-member counters of version 2 are replaced by the table above.
ALTER TABLE members DROP COLUMN failed_sign_ins;
ALTER TABLE members DROP COLUMN next_sign_in_at;
