-- Keysmith schema, version 3: expiry and rolling, and the change log the verifier follows.

-- When the key stops working (Unix ms, UTC); NULL means never. Rolling a key sets it to the
-- end of the grace period.
ALTER TABLE api_keys ADD COLUMN expires_at INTEGER;
-- The key that replaced this one when it was rolled.
ALTER TABLE api_keys ADD COLUMN replaced_by TEXT REFERENCES api_keys (id);

-- HMAC-SHA-256(pepper, "keysmith pepper check v1"): lets a verifier given a pepper file tell
-- at start-up whether that pepper belongs to this database. Reveals nothing of the pepper.
ALTER TABLE account ADD COLUMN pepper_check BLOB CHECK (pepper_check IS NULL OR length(pepper_check) = 32);

-- An expiry can be brought forward (rolling), never pushed back or removed.
CREATE TRIGGER api_keys_expiry_only_sooner
BEFORE UPDATE OF expires_at ON api_keys
WHEN OLD.expires_at IS NOT NULL AND (NEW.expires_at IS NULL OR NEW.expires_at > OLD.expires_at)
BEGIN
    SELECT RAISE(ABORT, 'keysmith: an API key''s expiry can only be brought forward');
END;

-- A key is rolled once.
CREATE TRIGGER api_keys_replaced_once
BEFORE UPDATE OF replaced_by ON api_keys
WHEN OLD.replaced_by IS NOT NULL AND NEW.replaced_by IS NOT OLD.replaced_by
BEGIN
    SELECT RAISE(ABORT, 'keysmith: an API key is replaced only once');
END;

-- Every change that alters a verification answer for one key appends its id here, so a
-- verifier holding an in-memory index reloads only those keys when the database changes
-- (it notices the change through PRAGMA data_version). Role changes and removals are in
-- the members table, which the verifier reloads whole.
CREATE TABLE key_changes (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    key_id  TEXT    NOT NULL
);

CREATE TRIGGER api_keys_log_insert
AFTER INSERT ON api_keys
BEGIN
    INSERT INTO key_changes (key_id) VALUES (NEW.id);
END;

CREATE TRIGGER api_keys_log_status
AFTER UPDATE OF revoked_at, expires_at ON api_keys
BEGIN
    INSERT INTO key_changes (key_id) VALUES (NEW.id);
END;
