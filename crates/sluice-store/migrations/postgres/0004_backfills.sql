-- Backfills: one run per window of a trigger over a range of time. The
-- windows are not stored (they follow from the schedule); the runs are found
-- by their idempotency keys and by the window index below.
CREATE TABLE backfill (
    id              TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    pipeline        TEXT COLLATE "C" NOT NULL,
    trigger_name    TEXT COLLATE "C" NOT NULL,
    range_from      BIGINT  NOT NULL,
    range_to        BIGINT  NOT NULL,
    reverse         BOOLEAN NOT NULL,
    max_concurrent  BIGINT  NOT NULL,
    rerun_completed BOOLEAN NOT NULL,
    priority        BIGINT  NOT NULL,
    status          TEXT COLLATE "C" NOT NULL,
    created_at      BIGINT  NOT NULL,
    created_by      TEXT    NOT NULL,
    changed_at      BIGINT,
    owner           TEXT
);

-- The reconciler reads the running backfills on every pass.
CREATE INDEX backfill_by_status ON backfill (status, created_at);

-- Which windows of a pipeline already have runs, read by every backfill pass.
CREATE INDEX pipeline_run_by_window ON pipeline_run (pipeline, window_end)
    WHERE window_end IS NOT NULL;
