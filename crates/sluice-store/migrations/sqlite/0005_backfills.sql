-- Backfills: one run per window of a trigger over a range of time. The
-- windows are not stored (they follow from the schedule); the runs are found
-- by their idempotency keys and by the window index below.
CREATE TABLE backfill (
    id              TEXT    NOT NULL PRIMARY KEY,
    pipeline        TEXT    NOT NULL,
    trigger_name    TEXT    NOT NULL,
    range_from      INTEGER NOT NULL,
    range_to        INTEGER NOT NULL,
    reverse         INTEGER NOT NULL,
    max_concurrent  INTEGER NOT NULL,
    rerun_completed INTEGER NOT NULL,
    priority        INTEGER NOT NULL,
    status          TEXT    NOT NULL,
    created_at      INTEGER NOT NULL,
    created_by      TEXT    NOT NULL,
    changed_at      INTEGER,
    owner           TEXT
) STRICT;

-- The reconciler reads the running backfills on every pass.
CREATE INDEX backfill_by_status ON backfill (status, created_at);

-- Which windows of a pipeline already have runs, read by every backfill pass.
CREATE INDEX pipeline_run_by_window ON pipeline_run (pipeline, window_end)
    WHERE window_end IS NOT NULL;
