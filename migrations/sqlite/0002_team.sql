-- Keysmith schema, version 2: sign-in throttling and the tamper-evident audit log.

ALTER TABLE members ADD COLUMN failed_sign_ins INTEGER NOT NULL DEFAULT 0;
ALTER TABLE members ADD COLUMN next_sign_in_at INTEGER;   -- no attempt is checked before this time

-- Members are disabled, never deleted: their keys and audit entries keep pointing at them.
CREATE TRIGGER members_no_delete
BEFORE DELETE ON members
BEGIN
    SELECT RAISE(ABORT, 'keysmith: members are removed by disabling them, never deleted');
END;

-- A removed member stays removed.
CREATE TRIGGER members_no_reenable
BEFORE UPDATE OF disabled_at ON members
WHEN OLD.disabled_at IS NOT NULL AND (NEW.disabled_at IS NULL OR NEW.disabled_at <> OLD.disabled_at)
BEGIN
    SELECT RAISE(ABORT, 'keysmith: a removed member cannot be re-enabled');
END;

-- The audit log: each entry's hash = SHA-256(previous hash || canonical encoding of the entry).
-- prev_hash is UNIQUE, so two writers can never both extend the same entry (the chain cannot fork).
CREATE TABLE audit_log (
    seq         INTEGER PRIMARY KEY NOT NULL,   -- 1, 2, 3, … in chain order
    at          INTEGER NOT NULL,
    actor_id    TEXT,                           -- NULL for events with no signed-in member
    actor_name  TEXT    NOT NULL,
    action      TEXT    NOT NULL,
    target      TEXT    NOT NULL,
    detail      TEXT    NOT NULL,
    prev_hash   BLOB    NOT NULL UNIQUE CHECK (length(prev_hash) = 32),
    hash        BLOB    NOT NULL CHECK (length(hash) = 32)
);

CREATE INDEX audit_log_actor ON audit_log (actor_id);
CREATE INDEX audit_log_action ON audit_log (action);

CREATE TRIGGER audit_log_no_update
BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'keysmith: the audit log is append-only');
END;

CREATE TRIGGER audit_log_no_delete
BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'keysmith: the audit log is append-only');
END;
