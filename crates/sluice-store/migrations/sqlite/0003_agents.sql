-- Tokens with the `agent` role, for remote agents (`sluice agent`). SQLite
-- cannot change a CHECK constraint in place, so the table is rebuilt with
-- its rows.
CREATE TABLE api_token_new (
    name       TEXT    NOT NULL PRIMARY KEY,
    role       TEXT    NOT NULL CHECK (role IN ('viewer', 'operator', 'admin', 'agent')),
    sha256     TEXT    NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    created_by TEXT,
    revoked_at INTEGER
) STRICT;

INSERT INTO api_token_new (name, role, sha256, created_at, created_by, revoked_at)
    SELECT name, role, sha256, created_at, created_by, revoked_at FROM api_token;

DROP TABLE api_token;

ALTER TABLE api_token_new RENAME TO api_token;

-- Remote agents (`sluice agent`): what they said when they registered and
-- whether they drain. Each is an executor with the same id, which holds its
-- host, labels and heartbeat.
CREATE TABLE agent (
    id            TEXT    NOT NULL PRIMARY KEY REFERENCES executor (id) ON DELETE CASCADE,
    name          TEXT    NOT NULL,
    version       TEXT    NOT NULL,
    draining      INTEGER NOT NULL DEFAULT 0,
    registered_at INTEGER NOT NULL
) STRICT;

CREATE INDEX agent_name ON agent (name, id);
-- How many tries an executor runs, for the agent listing.
CREATE INDEX block_try_executor ON block_try (executor) WHERE status = 'running';
