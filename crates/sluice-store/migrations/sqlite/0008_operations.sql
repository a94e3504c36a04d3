-- Operations: duration baselines and `slow`, resolved failures, retention.

-- The baseline a finished run was judged against (JSON: sample size, median
-- and p95 of the run and of each block) and whether it was slower than the
-- baseline's p95 times the pipeline's `drift.factor`.
ALTER TABLE pipeline_run ADD COLUMN slow INTEGER NOT NULL DEFAULT 0;
ALTER TABLE pipeline_run ADD COLUMN baseline TEXT;
-- A failed run is resolved when a later attempt of it, or a later run of
-- the same pipeline and window, completes: that run and attempt are kept.
ALTER TABLE pipeline_run ADD COLUMN resolved_at INTEGER;
ALTER TABLE pipeline_run ADD COLUMN resolved_by_run TEXT;
ALTER TABLE pipeline_run ADD COLUMN resolved_by_attempt INTEGER;

-- `runs list --slow` and `--unresolved` walk these in creation order.
CREATE INDEX pipeline_run_slow ON pipeline_run (created_at, id) WHERE slow = 1;
CREATE INDEX pipeline_run_unresolved ON pipeline_run (created_at, id)
    WHERE status = 'failed' AND resolved_at IS NULL;
-- The baseline reads the latest completed runs of a pipeline.
CREATE INDEX pipeline_run_completed_finished ON pipeline_run (pipeline, finished_at)
    WHERE status = 'completed';
-- Retention deletes a blob only when no row references it any more.
CREATE INDEX artifact_sha256 ON artifact (sha256);
CREATE INDEX block_run_data_sha256 ON block_run (json_extract(data, '$.sha256'))
    WHERE data IS NOT NULL;
