-- How each key is used, per UTC day (the same as migrations/sqlite/0011_usage.sql): a row per
-- key per day, added to by the verifier's flushes, pruned by its retention period.
CREATE TABLE key_usage (
    key_id          TEXT   NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
    day             BIGINT NOT NULL,
    allowed         BIGINT NOT NULL DEFAULT 0 CHECK (allowed >= 0),
    revoked         BIGINT NOT NULL DEFAULT 0 CHECK (revoked >= 0),
    expired         BIGINT NOT NULL DEFAULT 0 CHECK (expired >= 0),
    paused          BIGINT NOT NULL DEFAULT 0 CHECK (paused >= 0),
    role_refused    BIGINT NOT NULL DEFAULT 0 CHECK (role_refused >= 0),
    scope_refused   BIGINT NOT NULL DEFAULT 0 CHECK (scope_refused >= 0),
    address_refused BIGINT NOT NULL DEFAULT 0 CHECK (address_refused >= 0),
    rate_limited    BIGINT NOT NULL DEFAULT 0 CHECK (rate_limited >= 0),
    last_at         BIGINT,
    last_from       TEXT CHECK (last_from IS NULL OR length(last_from) BETWEEN 2 AND 45),
    PRIMARY KEY (key_id, day)
);

CREATE INDEX key_usage_day ON key_usage (day);
