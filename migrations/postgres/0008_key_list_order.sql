-- The key list's order as an index, as SQLite's migration 0012: the keys page's first page
-- of a long list is read in order and stops there.
CREATE INDEX api_keys_newest ON api_keys (created_at DESC, id DESC);
