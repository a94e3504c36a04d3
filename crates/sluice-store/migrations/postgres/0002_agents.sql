-- Tokens with the `agent` role, for remote agents (`sluice agent`).
ALTER TABLE api_token DROP CONSTRAINT api_token_role_check;
ALTER TABLE api_token ADD CONSTRAINT api_token_role_check
    CHECK (role IN ('viewer', 'operator', 'admin', 'agent'));

-- Remote agents (`sluice agent`): what they said when they registered and
-- whether they drain. Each is an executor with the same id, which holds its
-- host, labels and heartbeat.
CREATE TABLE agent (
    id            TEXT COLLATE "C" NOT NULL PRIMARY KEY REFERENCES executor (id) ON DELETE CASCADE,
    name          TEXT COLLATE "C" NOT NULL,
    version       TEXT    NOT NULL,
    draining      BOOLEAN NOT NULL DEFAULT FALSE,
    registered_at BIGINT  NOT NULL
);

CREATE INDEX agent_name ON agent (name, id);
-- How many tries an executor runs, for the agent listing.
CREATE INDEX block_try_executor ON block_try (executor) WHERE status = 'running';
