-- Queue control: a block run's place among the queued ones of its priority.
--
-- `queue_rank` is set to `queued_at` whenever a block run is queued, so the
-- claim order stays "oldest first" until an operator moves a block run; a
-- move rewrites the ranks within one priority band only.
ALTER TABLE block_run ADD COLUMN queue_rank INTEGER;
UPDATE block_run SET queue_rank = queued_at;

DROP INDEX block_run_claim;
CREATE INDEX block_run_claim ON block_run (priority DESC, queue_rank, id)
    WHERE status = 'queued';
