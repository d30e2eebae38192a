-- Where a key may be used from (the same as migrations/sqlite/0008_sources.sql): the IPv4/IPv6
-- networks (CIDR, canonical, separated by single spaces) a request using the key must come
-- from; NULL for anywhere. Fixed for the key's life; the row's MAC covers it.
ALTER TABLE api_keys ADD COLUMN allowed_sources TEXT
    CHECK (allowed_sources IS NULL OR length(allowed_sources) BETWEEN 1 AND 2048);

CREATE FUNCTION keysmith_api_keys_sources_fixed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.allowed_sources IS DISTINCT FROM OLD.allowed_sources THEN
        RAISE EXCEPTION 'keysmith: an API key''s allowed addresses are fixed for its life';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER api_keys_sources_fixed BEFORE UPDATE OF allowed_sources ON api_keys
    FOR EACH ROW EXECUTE FUNCTION keysmith_api_keys_sources_fixed();
