-- Firing schedules: the window each scheduled run covers, and the state of
-- every trigger that the scheduler keeps between passes.

-- The fire a scheduled run stands for and the window of time it covers;
-- all three are set together, or none for runs no schedule started.
ALTER TABLE pipeline_run ADD COLUMN scheduled_for INTEGER;
ALTER TABLE pipeline_run ADD COLUMN window_start INTEGER;
ALTER TABLE pipeline_run ADD COLUMN window_end INTEGER;

-- One row per trigger that has fired or been paused. `last_fired_at` only
-- moves forward (a conditional update), so two servers evaluating the same
-- schedule cannot move it back; `last_run_id` is the run that fire created.
CREATE TABLE trigger_state (
    pipeline      TEXT    NOT NULL,
    trigger_name  TEXT    NOT NULL,
    last_fired_at INTEGER,
    last_run_id   TEXT,
    paused        INTEGER NOT NULL DEFAULT 0,
    paused_by     TEXT,
    paused_at     INTEGER,
    PRIMARY KEY (pipeline, trigger_name)
) STRICT, WITHOUT ROWID;
