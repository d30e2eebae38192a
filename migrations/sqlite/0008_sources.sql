-- Keysmith schema, version 8: where a key may be used from.
--
-- allowed_sources: the IPv4/IPv6 networks (CIDR, canonical, separated by single spaces) a
-- request using the key must come from; NULL for anywhere. Set when the key is generated
-- (a roll copies it to the replacement) and never changed. The row's MAC covers it
-- (integrity.rs), so a list widened or removed outside Keysmith is refused as a changed row.
ALTER TABLE api_keys ADD COLUMN allowed_sources TEXT
    CHECK (allowed_sources IS NULL OR length(allowed_sources) BETWEEN 1 AND 2048);

CREATE TRIGGER api_keys_sources_fixed
BEFORE UPDATE OF allowed_sources ON api_keys
WHEN NEW.allowed_sources IS NOT OLD.allowed_sources
BEGIN
    SELECT RAISE(ABORT, 'keysmith: an API key''s allowed addresses are fixed for its life');
END;
