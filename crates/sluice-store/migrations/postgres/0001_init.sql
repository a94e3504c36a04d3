-- The run ledger on PostgreSQL: the same tables as the SQLite schema's
-- migrations 0001 and 0002, in one migration.
--
-- Timestamps are BIGINT microseconds since the Unix epoch (UTC), as on
-- SQLite, so that both backends encode and compare them the same way. Every
-- other integer is BIGINT too, so that every number decodes as a 64-bit
-- integer. Structured values are JSON, kept as written: they hold what users
-- and processes wrote (variables, outputs, log lines), which may include a
-- NUL character that JSONB refuses. Only block-run labels are JSONB, because
-- claims look inside them.
-- Identifiers and other keys are `COLLATE "C"`: listings and claims order
-- them byte by byte, whatever the database's locale, as SQLite does.
-- Every listing is served by an index and paged by key, never by OFFSET.

-- The exact pipeline file a run is pinned to, keyed by its SHA-256.
CREATE TABLE pipeline_version (
    sha256     TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    pipeline   TEXT             NOT NULL,
    source     TEXT             NOT NULL,
    created_at BIGINT           NOT NULL
);

-- One row per run; `status`, `attempt` and the timing columns describe the
-- run's latest attempt.
CREATE TABLE pipeline_run (
    id                  TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    pipeline            TEXT COLLATE "C" NOT NULL,
    status              TEXT COLLATE "C" NOT NULL
        CHECK (status IN ('initial', 'running', 'completed', 'failed', 'cancelled')),
    attempt             BIGINT  NOT NULL,
    priority            BIGINT  NOT NULL,
    -- `invoked_by.kind`, kept apart so that it can be indexed.
    trigger_kind        TEXT COLLATE "C" NOT NULL,
    invoked_by          JSON    NOT NULL,
    tags                JSON    NOT NULL,
    variables           JSON    NOT NULL,
    pipeline_version    TEXT    NOT NULL,
    created_at          BIGINT  NOT NULL,
    started_at          BIGINT,
    finished_at         BIGINT,
    error               TEXT,
    cancel_requested_at BIGINT,
    cancel_requested_by TEXT,
    timed_out           BOOLEAN NOT NULL DEFAULT FALSE,
    sla_missed          BOOLEAN NOT NULL DEFAULT FALSE,
    timeout_at          BIGINT,
    sla_at              BIGINT,
    idempotency_key     TEXT COLLATE "C",
    owner               TEXT COLLATE "C",
    block_concurrency   BIGINT,
    UNIQUE (pipeline, idempotency_key)
);

-- One index per filter of the run listing, each in listing order.
CREATE INDEX pipeline_run_created ON pipeline_run (created_at, id);
CREATE INDEX pipeline_run_pipeline_created ON pipeline_run (pipeline, created_at, id);
CREATE INDEX pipeline_run_status_created ON pipeline_run (status, created_at, id);
CREATE INDEX pipeline_run_trigger_created ON pipeline_run (trigger_kind, created_at, id);
-- Serves a listing filtered by pipeline and status, and `count_runs`.
CREATE INDEX pipeline_run_pipeline_status_created
    ON pipeline_run (pipeline, status, created_at, id);
-- The reconcilers read the active runs on every pass; this index holds only
-- them, so the read stays small however long the history grows.
CREATE INDEX pipeline_run_active ON pipeline_run (created_at, id)
    WHERE status IN ('initial', 'running');

-- The tags of a run, one row each, so that a listing filtered by tag walks
-- this index in creation order.
CREATE TABLE run_tag (
    tag        TEXT COLLATE "C" NOT NULL,
    created_at BIGINT           NOT NULL,
    run_id     TEXT COLLATE "C" NOT NULL REFERENCES pipeline_run (id) ON DELETE CASCADE,
    PRIMARY KEY (tag, created_at, run_id)
);

CREATE INDEX run_tag_run ON run_tag (run_id);

-- Every attempt of a run; a retry adds one and never rewrites earlier ones.
CREATE TABLE run_attempt (
    run_id      TEXT COLLATE "C" NOT NULL REFERENCES pipeline_run (id) ON DELETE CASCADE,
    attempt     BIGINT NOT NULL,
    status      TEXT COLLATE "C" NOT NULL
        CHECK (status IN ('initial', 'running', 'completed', 'failed', 'cancelled')),
    mode        TEXT   NOT NULL,
    from_block  TEXT,
    created_at  BIGINT NOT NULL,
    created_by  TEXT,
    started_at  BIGINT,
    finished_at BIGINT,
    error       TEXT,
    PRIMARY KEY (run_id, attempt)
);

-- One block within one attempt. `seq` keeps the creation order.
CREATE TABLE block_run (
    seq                 BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id                  TEXT COLLATE "C" NOT NULL UNIQUE,
    run_id              TEXT COLLATE "C" NOT NULL,
    attempt             BIGINT  NOT NULL,
    block               TEXT COLLATE "C" NOT NULL,
    status              TEXT COLLATE "C" NOT NULL
        CHECK (status IN ('initial', 'queued', 'running', 'completed', 'failed', 'cancelled',
                          'upstream_failed', 'condition_failed')),
    priority            BIGINT  NOT NULL,
    max_tries           BIGINT  NOT NULL,
    tries               BIGINT  NOT NULL DEFAULT 0,
    created_at          BIGINT  NOT NULL,
    queued_at           BIGINT,
    started_at          BIGINT,
    finished_at         BIGINT,
    retry_at            BIGINT,
    outputs             JSON    NOT NULL,
    error               TEXT,
    exit_code           BIGINT,
    timed_out           BOOLEAN NOT NULL DEFAULT FALSE,
    reused_from_attempt BIGINT,
    data                JSON,
    -- Matched against an executor's offered labels with `<@` when claiming.
    labels              JSONB   NOT NULL,
    idempotency_key     TEXT    NOT NULL,
    UNIQUE (run_id, attempt, block),
    FOREIGN KEY (run_id, attempt) REFERENCES run_attempt (run_id, attempt) ON DELETE CASCADE
);

-- The claim order over queued block runs only.
CREATE INDEX block_run_claim ON block_run (priority DESC, queued_at, id)
    WHERE status = 'queued';
-- `block_concurrency`: how many block runs of an attempt are running.
CREATE INDEX block_run_attempt_status ON block_run (run_id, attempt, status);

-- One execution of a block run, with its lease. `seq` keeps the start order
-- of tries that started at the same instant.
CREATE TABLE block_try (
    id               TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    seq              BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
    block_run_id     TEXT COLLATE "C" NOT NULL REFERENCES block_run (id) ON DELETE CASCADE,
    run_id           TEXT COLLATE "C" NOT NULL,
    try_number       BIGINT  NOT NULL,
    status           TEXT COLLATE "C" NOT NULL
        CHECK (status IN ('running', 'completed', 'failed', 'cancelled', 'lost')),
    executor         TEXT    NOT NULL,
    lease_epoch      BIGINT  NOT NULL,
    lease_expires_at BIGINT  NOT NULL,
    started_at       BIGINT  NOT NULL,
    finished_at      BIGINT,
    exit_code        BIGINT,
    error            TEXT,
    timed_out        BOOLEAN NOT NULL DEFAULT FALSE,
    UNIQUE (block_run_id, try_number)
);

CREATE INDEX block_try_run ON block_try (run_id, started_at, seq);
-- The lease reaper's scan.
CREATE INDEX block_try_lease ON block_try (lease_expires_at, id) WHERE status = 'running';

-- A try's log, in numbered chunks so that uploads are idempotent.
CREATE TABLE log_chunk (
    try_id TEXT COLLATE "C" NOT NULL REFERENCES block_try (id) ON DELETE CASCADE,
    seq    BIGINT NOT NULL,
    lines  JSON   NOT NULL,
    PRIMARY KEY (try_id, seq)
);

-- Files a block run left behind; their content is a blob keyed by `sha256`.
CREATE TABLE artifact (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id       TEXT COLLATE "C" NOT NULL,
    block_run_id TEXT COLLATE "C" NOT NULL,
    try_id       TEXT COLLATE "C" NOT NULL REFERENCES block_try (id) ON DELETE CASCADE,
    name         TEXT COLLATE "C" NOT NULL,
    size         BIGINT NOT NULL,
    sha256       TEXT   NOT NULL,
    created_at   BIGINT NOT NULL
);

CREATE INDEX artifact_run ON artifact (run_id, id);
CREATE INDEX artifact_name ON artifact (name, id);
-- The foreign key from `artifact` to `block_try` is checked on every delete
-- of a try; this index keeps that check from scanning the table.
CREATE INDEX artifact_try ON artifact (try_id);

-- Who did what, to what, when. Paged newest first by id.
CREATE TABLE audit_event (
    id      BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at      BIGINT NOT NULL,
    actor   TEXT   NOT NULL,
    action  TEXT   NOT NULL,
    target  TEXT   NOT NULL,
    details JSON   NOT NULL
);

-- Processes that execute tries.
CREATE TABLE executor (
    id           TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    kind         TEXT   NOT NULL,
    host         TEXT   NOT NULL,
    pid          BIGINT NOT NULL,
    started_at   BIGINT NOT NULL,
    heartbeat_at BIGINT NOT NULL,
    labels       JSON   NOT NULL
);

-- API tokens. Only the SHA-256 of a token is stored; the token itself is
-- shown once, when it is created.
CREATE TABLE api_token (
    name       TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    role       TEXT   NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
    sha256     TEXT COLLATE "C" NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    created_by TEXT,
    revoked_at BIGINT
);

-- The hash of the request that first used an `Idempotency-Key` for a
-- pipeline, so that a replay with another body is refused instead of
-- silently answered with the first request's run.
CREATE TABLE idempotency_request (
    pipeline     TEXT COLLATE "C" NOT NULL,
    key          TEXT COLLATE "C" NOT NULL,
    request_hash TEXT   NOT NULL,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (pipeline, key)
);
