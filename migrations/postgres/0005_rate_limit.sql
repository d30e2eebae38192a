-- How often a key may be used (the same as migrations/sqlite/0009_rate_limit.sql): the key's
-- rate limit in canonical form (`10/s burst 20`, rate.rs); NULL for no limit. Fixed for the
-- key's life; the row's MAC covers it.
ALTER TABLE api_keys ADD COLUMN rate_limit TEXT
    CHECK (rate_limit IS NULL OR length(rate_limit) BETWEEN 1 AND 64);

CREATE FUNCTION keysmith_api_keys_rate_limit_fixed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.rate_limit IS DISTINCT FROM OLD.rate_limit THEN
        RAISE EXCEPTION 'keysmith: an API key''s rate limit is fixed for its life';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER api_keys_rate_limit_fixed BEFORE UPDATE OF rate_limit ON api_keys
    FOR EACH ROW EXECUTE FUNCTION keysmith_api_keys_rate_limit_fixed();
