-- Keysmith's schema on PostgreSQL (the team server): the same tables, columns and rules as
-- the SQLite schema in migrations/sqlite/ after its last migration, so one SQL text per
-- operation (crates/keysmith-core/src/store.rs) serves both. Times are Unix milliseconds.

CREATE TABLE account (
    id            TEXT    PRIMARY KEY NOT NULL,
    created_at    BIGINT  NOT NULL,
    singleton     INTEGER NOT NULL DEFAULT 1 UNIQUE CHECK (singleton = 1),
    pepper_check  BYTEA   CHECK (pepper_check IS NULL OR length(pepper_check) = 32)
);

CREATE TABLE members (
    id               TEXT    PRIMARY KEY NOT NULL,
    name             TEXT    NOT NULL,
    name_key         TEXT    NOT NULL UNIQUE,          -- the name as compared (validate::name_key)
    role             TEXT    NOT NULL CHECK (role IN ('owner', 'admin', 'manager', 'author', 'viewer')),
    passphrase_hash  TEXT    NOT NULL,                 -- argon2id PHC string
    must_change_passphrase BOOLEAN NOT NULL DEFAULT FALSE,
    created_at       BIGINT  NOT NULL,
    disabled_at      BIGINT,
    mac              BYTEA   CHECK (mac IS NULL OR length(mac) = 32)
);

CREATE UNIQUE INDEX members_one_owner ON members (role) WHERE role = 'owner';

CREATE TABLE api_keys (
    id            TEXT    PRIMARY KEY NOT NULL,
    name          TEXT    NOT NULL,
    start         TEXT    NOT NULL CHECK (length(start) = 4),          -- first 4 characters of the body
    digest        BYTEA   NOT NULL UNIQUE CHECK (length(digest) = 32), -- HMAC-SHA-256(pepper, key)
    created_at    BIGINT  NOT NULL,
    created_by    TEXT    NOT NULL REFERENCES members (id),
    revoked_at    BIGINT,
    last_used_at  BIGINT,
    expires_at    BIGINT,
    replaced_by   TEXT    REFERENCES api_keys (id),
    mac           BYTEA   CHECK (mac IS NULL OR length(mac) = 32)
);

CREATE INDEX api_keys_created_by ON api_keys (created_by);

CREATE TABLE audit_log (
    seq         BIGINT  PRIMARY KEY NOT NULL,   -- 1, 2, 3, … in chain order
    at          BIGINT  NOT NULL,
    actor_id    TEXT,                           -- NULL for events with no signed-in member
    actor_name  TEXT    NOT NULL,
    action      TEXT    NOT NULL,
    target      TEXT    NOT NULL,
    detail      TEXT    NOT NULL,
    prev_hash   BYTEA   NOT NULL UNIQUE CHECK (length(prev_hash) = 32),
    hash        BYTEA   NOT NULL CHECK (length(hash) = 32),
    keyed       BOOLEAN NOT NULL DEFAULT FALSE,
    subject     TEXT,                           -- 'member:<id>' or 'key:<id>'
    state       BYTEA   CHECK (state IS NULL OR length(state) = 32)
);

CREATE INDEX audit_log_actor ON audit_log (actor_id);
CREATE INDEX audit_log_action ON audit_log (action);
CREATE INDEX audit_log_subject ON audit_log (subject);

CREATE TABLE sign_in_attempts (
    name_key  TEXT    PRIMARY KEY NOT NULL,
    failed    BIGINT  NOT NULL,          -- attempts since the last successful sign-in
    next_at   BIGINT,                    -- no attempt is checked before this time
    last_at   BIGINT  NOT NULL           -- the latest attempt, for pruning idle rows
);

CREATE INDEX sign_in_attempts_last_at ON sign_in_attempts (last_at);

-- Sessions of the team server: only the SHA-256 digest of each bearer token is stored.
CREATE TABLE sessions (
    digest      BYTEA   PRIMARY KEY NOT NULL CHECK (length(digest) = 32),
    member_id   TEXT    NOT NULL REFERENCES members (id),
    created_at  BIGINT  NOT NULL,
    expires_at  BIGINT  NOT NULL,
    ended_at    BIGINT,
    mac         BYTEA   NOT NULL CHECK (length(mac) = 32)
);

CREATE INDEX sessions_member ON sessions (member_id);
CREATE INDEX sessions_expires ON sessions (expires_at);

-- Every key insert and every change of a key's status, in commit order (writers hold the
-- advisory write lock, so sequence order is commit order) for the verifier replicas, which
-- also hear of each through NOTIFY keysmith_changes.
CREATE TABLE key_changes (
    seq     BIGSERIAL PRIMARY KEY,
    key_id  TEXT      NOT NULL
);

-- The rules the SQLite triggers keep, kept here by one function per table.

CREATE FUNCTION keysmith_api_keys_rules() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'keysmith: API keys are revoked, never deleted';
    END IF;
    IF OLD.revoked_at IS NOT NULL AND NEW.revoked_at IS DISTINCT FROM OLD.revoked_at THEN
        RAISE EXCEPTION 'keysmith: a revoked API key cannot be reactivated';
    END IF;
    IF NEW.id IS DISTINCT FROM OLD.id OR NEW.digest IS DISTINCT FROM OLD.digest
       OR NEW.start IS DISTINCT FROM OLD.start OR NEW.created_at IS DISTINCT FROM OLD.created_at
       OR NEW.created_by IS DISTINCT FROM OLD.created_by THEN
        RAISE EXCEPTION 'keysmith: an API key''s id, digest, start, creator and creation time cannot change';
    END IF;
    IF OLD.expires_at IS NOT NULL AND (NEW.expires_at IS NULL OR NEW.expires_at > OLD.expires_at) THEN
        RAISE EXCEPTION 'keysmith: an API key''s expiry can only be brought forward';
    END IF;
    IF OLD.replaced_by IS NOT NULL AND NEW.replaced_by IS DISTINCT FROM OLD.replaced_by THEN
        RAISE EXCEPTION 'keysmith: an API key is replaced only once';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER api_keys_rules BEFORE UPDATE OR DELETE ON api_keys
    FOR EACH ROW EXECUTE FUNCTION keysmith_api_keys_rules();

CREATE FUNCTION keysmith_members_rules() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'keysmith: members are removed by disabling them, never deleted';
    END IF;
    IF OLD.disabled_at IS NOT NULL AND NEW.disabled_at IS DISTINCT FROM OLD.disabled_at THEN
        RAISE EXCEPTION 'keysmith: a removed member cannot be re-enabled';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER members_rules BEFORE UPDATE OR DELETE ON members
    FOR EACH ROW EXECUTE FUNCTION keysmith_members_rules();

CREATE FUNCTION keysmith_audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'keysmith: the audit log is append-only';
END $$;

CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION keysmith_audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION keysmith_audit_log_append_only();

-- A key's insert, revoke, expiry change (roll) or its creator's removal or role change: the
-- verifier replicas reload what changed. The notification is sent at commit, to listeners.
CREATE FUNCTION keysmith_log_key_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO key_changes (key_id) VALUES (NEW.id);
    PERFORM pg_notify('keysmith_changes', 'key');
    RETURN NULL;
END $$;

CREATE TRIGGER api_keys_log_insert AFTER INSERT ON api_keys
    FOR EACH ROW EXECUTE FUNCTION keysmith_log_key_change();
CREATE TRIGGER api_keys_log_status AFTER UPDATE OF revoked_at, expires_at ON api_keys
    FOR EACH ROW EXECUTE FUNCTION keysmith_log_key_change();

-- Every change of a member row (role, removal, passphrase, seal), in commit order.
CREATE TABLE member_changes (
    seq        BIGSERIAL PRIMARY KEY,
    member_id  TEXT      NOT NULL
);

CREATE FUNCTION keysmith_log_member_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO member_changes (member_id) VALUES (NEW.id);
    PERFORM pg_notify('keysmith_changes', 'member');
    RETURN NULL;
END $$;

CREATE TRIGGER members_log_change AFTER INSERT OR UPDATE ON members
    FOR EACH ROW EXECUTE FUNCTION keysmith_log_member_change();
