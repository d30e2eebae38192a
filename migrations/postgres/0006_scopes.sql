-- Scopes that make a key narrower than its creator's role (the same as
-- migrations/sqlite/0010_scopes.sql): the sorted names joined by ","; NULL for the creator's
-- whole role. Fixed for the key's life; the row's MAC covers it.
ALTER TABLE api_keys ADD COLUMN scopes TEXT
    CHECK (scopes IS NULL OR length(scopes) BETWEEN 1 AND 1040);

CREATE FUNCTION keysmith_api_keys_scopes_fixed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.scopes IS DISTINCT FROM OLD.scopes THEN
        RAISE EXCEPTION 'keysmith: an API key''s scopes are fixed for its life';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER api_keys_scopes_fixed BEFORE UPDATE OF scopes ON api_keys
    FOR EACH ROW EXECUTE FUNCTION keysmith_api_keys_scopes_fixed();
