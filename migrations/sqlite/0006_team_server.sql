-- Sessions of the team server (`keysmith serve`): a member signed in over HTTP holds an opaque
-- bearer token; only its SHA-256 digest is stored. The same table exists on PostgreSQL.
CREATE TABLE sessions (
    digest      BLOB    PRIMARY KEY NOT NULL CHECK (length(digest) = 32),
    member_id   TEXT    NOT NULL REFERENCES members (id),
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,          -- Unix ms; no use at or after this time
    ended_at    INTEGER,                   -- signed out (or ended by a passphrase change)
    mac         BLOB    NOT NULL CHECK (length(mac) = 32)   -- integrity::RowKey::session_mac
);

CREATE INDEX sessions_member ON sessions (member_id);
CREATE INDEX sessions_expires ON sessions (expires_at);

-- Every change of a member row, in commit order: verifier replicas reload the members when
-- it grows (the same table exists on PostgreSQL).
CREATE TABLE member_changes (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    member_id  TEXT    NOT NULL
);

CREATE TRIGGER members_log_insert
AFTER INSERT ON members
BEGIN
    INSERT INTO member_changes (member_id) VALUES (NEW.id);
END;

CREATE TRIGGER members_log_update
AFTER UPDATE ON members
BEGIN
    INSERT INTO member_changes (member_id) VALUES (NEW.id);
END;
