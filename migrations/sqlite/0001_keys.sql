-- Keysmith schema, version 1: the account, its members and their API keys.
-- Times are Unix epoch milliseconds (UTC). Ids are UUID strings.
-- The SQL is kept portable to PostgreSQL where that costs little (see ARCHITECTURE.md).

CREATE TABLE account (
    id          TEXT    PRIMARY KEY NOT NULL,
    created_at  INTEGER NOT NULL,
    -- exactly one account per database
    singleton   INTEGER NOT NULL DEFAULT 1 UNIQUE CHECK (singleton = 1)
);

CREATE TABLE members (
    id               TEXT    PRIMARY KEY NOT NULL,
    name             TEXT    NOT NULL,
    name_key         TEXT    NOT NULL UNIQUE,          -- lowercase name, for case-insensitive uniqueness
    role             TEXT    NOT NULL CHECK (role IN ('owner', 'admin', 'manager', 'author', 'viewer')),
    passphrase_hash  TEXT    NOT NULL,                 -- argon2id PHC string
    must_change_passphrase INTEGER NOT NULL DEFAULT 0 CHECK (must_change_passphrase IN (0, 1)),
    created_at       INTEGER NOT NULL,
    disabled_at      INTEGER
);

-- Exactly one Owner: a second 'owner' row is refused by the schema itself.
CREATE UNIQUE INDEX members_one_owner ON members (role) WHERE role = 'owner';

CREATE TABLE api_keys (
    id            TEXT    PRIMARY KEY NOT NULL,
    name          TEXT    NOT NULL,
    start         TEXT    NOT NULL CHECK (length(start) = 4),   -- first 4 characters of the body
    digest        BLOB    NOT NULL UNIQUE CHECK (length(digest) = 32), -- HMAC-SHA-256(pepper, key)
    created_at    INTEGER NOT NULL,
    created_by    TEXT    NOT NULL REFERENCES members (id),
    revoked_at    INTEGER,
    last_used_at  INTEGER
);

CREATE INDEX api_keys_created_by ON api_keys (created_by);

-- A revoked key can never be reactivated, whatever the caller.
CREATE TRIGGER api_keys_no_unrevoke
BEFORE UPDATE OF revoked_at ON api_keys
WHEN OLD.revoked_at IS NOT NULL AND (NEW.revoked_at IS NULL OR NEW.revoked_at <> OLD.revoked_at)
BEGIN
    SELECT RAISE(ABORT, 'keysmith: a revoked API key cannot be reactivated');
END;

-- A key's identity is fixed at generation.
CREATE TRIGGER api_keys_identity_fixed
BEFORE UPDATE OF id, digest, start, created_at, created_by ON api_keys
WHEN NEW.id IS NOT OLD.id OR NEW.digest IS NOT OLD.digest OR NEW.start IS NOT OLD.start
  OR NEW.created_at IS NOT OLD.created_at OR NEW.created_by IS NOT OLD.created_by
BEGIN
    SELECT RAISE(ABORT, 'keysmith: an API key''s id, digest, start, creator and creation time cannot change');
END;

-- Keys are revoked, never deleted: the row is the record that the key existed.
CREATE TRIGGER api_keys_no_delete
BEFORE DELETE ON api_keys
BEGIN
    SELECT RAISE(ABORT, 'keysmith: API keys are revoked, never deleted');
END;
