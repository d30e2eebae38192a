-- Keysmith schema, version 7: pausing a key.
--
-- paused_at: when an Owner, Admin or the key's creator paused the key (Unix ms); NULL when it
-- is not paused. A paused key is refused like a revoked one, but can be resumed (paused_at
-- back to NULL). The row's MAC covers it (integrity.rs, "key v1" plus the pause when set), so
-- a pause lifted outside Keysmith is refused as a changed row.
ALTER TABLE api_keys ADD COLUMN paused_at INTEGER;

-- A revoked key stays as it was: pausing it, or resuming it, means nothing.
CREATE TRIGGER api_keys_no_pause_after_revoke
BEFORE UPDATE OF paused_at ON api_keys
WHEN OLD.revoked_at IS NOT NULL AND NEW.paused_at IS NOT OLD.paused_at
BEGIN
    SELECT RAISE(ABORT, 'keysmith: a revoked API key cannot be paused or resumed');
END;

-- A pause or a resume changes the verifier's answer for the key.
CREATE TRIGGER api_keys_log_pause
AFTER UPDATE OF paused_at ON api_keys
BEGIN
    INSERT INTO key_changes (key_id) VALUES (NEW.id);
END;
