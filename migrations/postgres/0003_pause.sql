-- Pausing a key (the same as migrations/sqlite/0007_pause.sql): paused_at is when the key was
-- paused (Unix ms), NULL when it is not. A paused key is refused like a revoked one and can be
-- resumed; the row's MAC covers the pause.
ALTER TABLE api_keys ADD COLUMN paused_at BIGINT;

CREATE FUNCTION keysmith_api_keys_pause_rules() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.revoked_at IS NOT NULL AND NEW.paused_at IS DISTINCT FROM OLD.paused_at THEN
        RAISE EXCEPTION 'keysmith: a revoked API key cannot be paused or resumed';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER api_keys_pause_rules BEFORE UPDATE OF paused_at ON api_keys
    FOR EACH ROW EXECUTE FUNCTION keysmith_api_keys_pause_rules();

-- A pause or a resume changes the replicas' answer for the key.
CREATE TRIGGER api_keys_log_pause AFTER UPDATE OF paused_at ON api_keys
    FOR EACH ROW EXECUTE FUNCTION keysmith_log_key_change();
