-- Keysmith schema, version 10: scopes that make a key narrower than its creator's role.
--
-- scopes: the key's scope names, sorted and joined by "," (`orders:create,reports:read`,
-- scope.rs); NULL for the creator's whole role. Set when the key is generated (a roll copies it
-- to the replacement) and never changed. The row's MAC covers it (integrity.rs), so a scope
-- added or removed outside Keysmith is refused as a changed row.
ALTER TABLE api_keys ADD COLUMN scopes TEXT
    CHECK (scopes IS NULL OR length(scopes) BETWEEN 1 AND 1040);

CREATE TRIGGER api_keys_scopes_fixed
BEFORE UPDATE OF scopes ON api_keys
WHEN NEW.scopes IS NOT OLD.scopes
BEGIN
    SELECT RAISE(ABORT, 'keysmith: an API key''s scopes are fixed for its life');
END;
