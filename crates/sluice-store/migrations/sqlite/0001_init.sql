-- The run ledger, first version.
--
-- Timestamps are INTEGER microseconds since the Unix epoch (UTC); JSON values
-- are TEXT. Every listing is served by an index and paged by key, never by
-- OFFSET.

-- The exact pipeline file a run is pinned to, keyed by its SHA-256.
CREATE TABLE pipeline_version (
    sha256     TEXT    NOT NULL PRIMARY KEY,
    pipeline   TEXT    NOT NULL,
    source     TEXT    NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;

-- One row per run; `status`, `attempt` and the timing columns describe the
-- run's latest attempt.
CREATE TABLE pipeline_run (
    id                  TEXT    NOT NULL PRIMARY KEY,
    pipeline            TEXT    NOT NULL,
    status              TEXT    NOT NULL
        CHECK (status IN ('initial', 'running', 'completed', 'failed', 'cancelled')),
    attempt             INTEGER NOT NULL,
    priority            INTEGER NOT NULL,
    -- `invoked_by.kind`, kept apart so that it can be indexed.
    trigger_kind        TEXT    NOT NULL,
    invoked_by          TEXT    NOT NULL,
    tags                TEXT    NOT NULL,
    variables           TEXT    NOT NULL,
    pipeline_version    TEXT    NOT NULL,
    created_at          INTEGER NOT NULL,
    started_at          INTEGER,
    finished_at         INTEGER,
    error               TEXT,
    cancel_requested_at INTEGER,
    cancel_requested_by TEXT,
    timed_out           INTEGER NOT NULL DEFAULT 0,
    sla_missed          INTEGER NOT NULL DEFAULT 0,
    timeout_at          INTEGER,
    sla_at              INTEGER,
    idempotency_key     TEXT,
    owner               TEXT,
    block_concurrency   INTEGER,
    UNIQUE (pipeline, idempotency_key)
) STRICT;

CREATE INDEX pipeline_run_created ON pipeline_run (created_at, id);
CREATE INDEX pipeline_run_pipeline_created ON pipeline_run (pipeline, created_at, id);
CREATE INDEX pipeline_run_status_created ON pipeline_run (status, created_at, id);
CREATE INDEX pipeline_run_trigger_created ON pipeline_run (trigger_kind, created_at, id);
-- Serves a listing filtered by pipeline and status, and `count_runs`.
CREATE INDEX pipeline_run_pipeline_status_created ON pipeline_run (pipeline, status, created_at, id);

-- The tags of a run, one row each, so that a listing filtered by tag walks
-- this index in creation order.
CREATE TABLE run_tag (
    tag        TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    run_id     TEXT    NOT NULL REFERENCES pipeline_run (id) ON DELETE CASCADE,
    PRIMARY KEY (tag, created_at, run_id)
) STRICT, WITHOUT ROWID;

CREATE INDEX run_tag_run ON run_tag (run_id);

-- Every attempt of a run; a retry adds one and never rewrites earlier ones.
CREATE TABLE run_attempt (
    run_id      TEXT    NOT NULL REFERENCES pipeline_run (id) ON DELETE CASCADE,
    attempt     INTEGER NOT NULL,
    status      TEXT    NOT NULL
        CHECK (status IN ('initial', 'running', 'completed', 'failed', 'cancelled')),
    mode        TEXT    NOT NULL,
    from_block  TEXT,
    created_at  INTEGER NOT NULL,
    created_by  TEXT,
    started_at  INTEGER,
    finished_at INTEGER,
    error       TEXT,
    PRIMARY KEY (run_id, attempt)
) STRICT, WITHOUT ROWID;

-- One block within one attempt. `seq` keeps the creation order.
CREATE TABLE block_run (
    seq                 INTEGER NOT NULL PRIMARY KEY,
    id                  TEXT    NOT NULL UNIQUE,
    run_id              TEXT    NOT NULL,
    attempt             INTEGER NOT NULL,
    block               TEXT    NOT NULL,
    status              TEXT    NOT NULL
        CHECK (status IN ('initial', 'queued', 'running', 'completed', 'failed', 'cancelled',
                          'upstream_failed', 'condition_failed')),
    priority            INTEGER NOT NULL,
    max_tries           INTEGER NOT NULL,
    tries               INTEGER NOT NULL DEFAULT 0,
    created_at          INTEGER NOT NULL,
    queued_at           INTEGER,
    started_at          INTEGER,
    finished_at         INTEGER,
    retry_at            INTEGER,
    outputs             TEXT    NOT NULL,
    error               TEXT,
    exit_code           INTEGER,
    timed_out           INTEGER NOT NULL DEFAULT 0,
    reused_from_attempt INTEGER,
    data                TEXT,
    labels              TEXT    NOT NULL,
    idempotency_key     TEXT    NOT NULL,
    UNIQUE (run_id, attempt, block),
    FOREIGN KEY (run_id, attempt) REFERENCES run_attempt (run_id, attempt) ON DELETE CASCADE
) STRICT;

-- The claim order over queued block runs only.
CREATE INDEX block_run_claim ON block_run (priority DESC, queued_at, id)
    WHERE status = 'queued';
-- `block_concurrency`: how many block runs of an attempt are running.
CREATE INDEX block_run_attempt_status ON block_run (run_id, attempt, status);

-- One execution of a block run, with its lease.
CREATE TABLE block_try (
    id               TEXT    NOT NULL PRIMARY KEY,
    block_run_id     TEXT    NOT NULL REFERENCES block_run (id) ON DELETE CASCADE,
    run_id           TEXT    NOT NULL,
    try_number       INTEGER NOT NULL,
    status           TEXT    NOT NULL
        CHECK (status IN ('running', 'completed', 'failed', 'cancelled', 'lost')),
    executor         TEXT    NOT NULL,
    lease_epoch      INTEGER NOT NULL,
    lease_expires_at INTEGER NOT NULL,
    started_at       INTEGER NOT NULL,
    finished_at      INTEGER,
    exit_code        INTEGER,
    error            TEXT,
    timed_out        INTEGER NOT NULL DEFAULT 0,
    UNIQUE (block_run_id, try_number)
) STRICT;

CREATE INDEX block_try_run ON block_try (run_id, started_at);
-- The lease reaper's scan.
CREATE INDEX block_try_lease ON block_try (lease_expires_at) WHERE status = 'running';

-- A try's log, in numbered chunks so that uploads are idempotent.
CREATE TABLE log_chunk (
    try_id TEXT    NOT NULL REFERENCES block_try (id) ON DELETE CASCADE,
    seq    INTEGER NOT NULL,
    lines  TEXT    NOT NULL,
    PRIMARY KEY (try_id, seq)
) STRICT, WITHOUT ROWID;

-- Files a block run left behind; their content is a blob keyed by `sha256`.
CREATE TABLE artifact (
    id           INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    run_id       TEXT    NOT NULL,
    block_run_id TEXT    NOT NULL,
    try_id       TEXT    NOT NULL REFERENCES block_try (id) ON DELETE CASCADE,
    name         TEXT    NOT NULL,
    size         INTEGER NOT NULL,
    sha256       TEXT    NOT NULL,
    created_at   INTEGER NOT NULL
) STRICT;

CREATE INDEX artifact_run ON artifact (run_id, id);

-- Who did what, to what, when. Paged newest first by id.
CREATE TABLE audit_event (
    id      INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    at      INTEGER NOT NULL,
    actor   TEXT    NOT NULL,
    action  TEXT    NOT NULL,
    target  TEXT    NOT NULL,
    details TEXT    NOT NULL
) STRICT;

-- Processes that execute tries.
CREATE TABLE executor (
    id           TEXT    NOT NULL PRIMARY KEY,
    kind         TEXT    NOT NULL,
    host         TEXT    NOT NULL,
    pid          INTEGER NOT NULL,
    started_at   INTEGER NOT NULL,
    heartbeat_at INTEGER NOT NULL,
    labels       TEXT    NOT NULL
) STRICT;
