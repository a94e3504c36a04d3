-- What the server needs beyond the run ledger: API tokens, the requests
-- behind API idempotency keys, and an index for artifact search by name.

-- API tokens. Only the SHA-256 of a token is stored; the token itself is
-- shown once, when it is created.
CREATE TABLE api_token (
    name       TEXT    NOT NULL PRIMARY KEY,
    role       TEXT    NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
    sha256     TEXT    NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    created_by TEXT,
    revoked_at INTEGER
) STRICT;

-- The hash of the request that first used an `Idempotency-Key` for a
-- pipeline, so that a replay with another body is refused instead of
-- silently answered with the first request's run.
CREATE TABLE idempotency_request (
    pipeline     TEXT    NOT NULL,
    key          TEXT    NOT NULL,
    request_hash TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (pipeline, key)
) STRICT, WITHOUT ROWID;

CREATE INDEX artifact_name ON artifact (name, id);
