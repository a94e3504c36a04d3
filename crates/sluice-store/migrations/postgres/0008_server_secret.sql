-- Secrets the servers of one database share, by name (for example the key
-- that signs web UI session cookies): the first server to need one stores
-- it, every later server reads the same value, so a cookie signed by one
-- server is valid on all of them.
CREATE TABLE server_secret (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
