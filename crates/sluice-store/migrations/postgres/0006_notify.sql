-- Notifications and SLA risk (SQLite migration 0007).
--
-- A run raises a notification event (`failed`, `sla_missed`, ...) once per
-- attempt (or once per run for the run-wide events); each event becomes one
-- delivery per channel its `notify:` routes it to. A delivery is sent by the
-- notification reconciler, which claims it with a conditional update
-- (`claimed_until`, rows locked with SKIP LOCKED), so two servers never send
-- the same attempt twice. Channel settings (URLs, addresses, secrets) are
-- not stored: they are read from the pinned pipeline and the server's
-- environment when sending.
ALTER TABLE pipeline_run ADD COLUMN sla_at_risk_at BIGINT;

CREATE TABLE notification_delivery (
    id              BIGSERIAL PRIMARY KEY,
    run_id          TEXT COLLATE "C" NOT NULL REFERENCES pipeline_run (id) ON DELETE CASCADE,
    attempt         BIGINT  NOT NULL,
    event           TEXT COLLATE "C" NOT NULL,
    channel         TEXT COLLATE "C" NOT NULL,
    kind            TEXT COLLATE "C" NOT NULL CHECK (kind IN ('webhook', 'slack', 'email')),
    status          TEXT COLLATE "C" NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts        BIGINT  NOT NULL DEFAULT 0,
    max_attempts    BIGINT  NOT NULL,
    last_error      TEXT,
    payload         JSON    NOT NULL,
    created_at      BIGINT  NOT NULL,
    next_attempt_at BIGINT,
    claimed_until   BIGINT,
    updated_at      BIGINT  NOT NULL,
    delivered_at    BIGINT,
    UNIQUE (run_id, attempt, event, channel)
);

-- The reconciler's scan: pending deliveries by when they are due.
CREATE INDEX notification_delivery_due ON notification_delivery (next_attempt_at, id)
    WHERE status = 'pending';
