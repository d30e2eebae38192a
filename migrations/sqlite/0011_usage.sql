-- Keysmith schema, version 11: how each key is used, per UTC day (usage.rs).
--
-- A row per key per day, never a row per request: the verifier counts in memory and adds its
-- counts here in one transaction per flush. day: days since 1970-01-01, UTC. The counts: the
-- requests the key was accepted for, then its refusals by reason. last_at / last_from: the
-- day's last accepted use (Unix ms) and its client address, when the verifier knew one.
-- Statistics, not decisions: nothing reads these rows to allow or refuse a key, so they carry
-- no seal. Rows older than the verifier's retention period are deleted by the verifier.
CREATE TABLE key_usage (
    key_id          TEXT    NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
    day             INTEGER NOT NULL,
    allowed         INTEGER NOT NULL DEFAULT 0 CHECK (allowed >= 0),
    revoked         INTEGER NOT NULL DEFAULT 0 CHECK (revoked >= 0),
    expired         INTEGER NOT NULL DEFAULT 0 CHECK (expired >= 0),
    paused          INTEGER NOT NULL DEFAULT 0 CHECK (paused >= 0),
    role_refused    INTEGER NOT NULL DEFAULT 0 CHECK (role_refused >= 0),
    scope_refused   INTEGER NOT NULL DEFAULT 0 CHECK (scope_refused >= 0),
    address_refused INTEGER NOT NULL DEFAULT 0 CHECK (address_refused >= 0),
    rate_limited    INTEGER NOT NULL DEFAULT 0 CHECK (rate_limited >= 0),
    last_at         INTEGER,
    last_from       TEXT CHECK (last_from IS NULL OR length(last_from) BETWEEN 2 AND 45),
    PRIMARY KEY (key_id, day)
) WITHOUT ROWID;

CREATE INDEX key_usage_day ON key_usage (day);
