-- Keysmith schema, version 9: how often a key may be used.
--
-- rate_limit: the key's rate limit in canonical form (`10/s burst 20`, `600/min burst 600`,
-- rate.rs), enforced by each verifier in memory; NULL for no limit. Set when the key is
-- generated (a roll copies it to the replacement) and never changed. The row's MAC covers it
-- (integrity.rs), so a limit raised or removed outside Keysmith is refused as a changed row.
ALTER TABLE api_keys ADD COLUMN rate_limit TEXT
    CHECK (rate_limit IS NULL OR length(rate_limit) BETWEEN 1 AND 64);

CREATE TRIGGER api_keys_rate_limit_fixed
BEFORE UPDATE OF rate_limit ON api_keys
WHEN NEW.rate_limit IS NOT OLD.rate_limit
BEGIN
    SELECT RAISE(ABORT, 'keysmith: an API key''s rate limit is fixed for its life');
END;
