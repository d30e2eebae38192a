-- Keysmith schema, version 12: the key list's order as an index.
--
-- The keys page and `keys list` show keys newest first (created_at, then id, descending).
-- With this index the first page of a long list (the keys page asks for one before the rest)
-- is read in order and stops there, instead of reading, checking and sorting every key.
CREATE INDEX api_keys_newest ON api_keys (created_at DESC, id DESC);
