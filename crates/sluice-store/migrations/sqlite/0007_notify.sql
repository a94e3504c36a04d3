-- Notifications and SLA risk.
--
-- A run raises a notification event (`failed`, `sla_missed`, ...) once per
-- attempt (or once per run for the run-wide events); each event becomes one
-- delivery per channel its `notify:` routes it to. A delivery is sent by the
-- notification reconciler, which claims it with a conditional update
-- (`claimed_until`), so two servers never send the same attempt twice.
-- Channel settings (URLs, addresses, secrets) are not stored: they are read
-- from the pinned pipeline and the server's environment when sending.
ALTER TABLE pipeline_run ADD COLUMN sla_at_risk_at INTEGER;

CREATE TABLE notification_delivery (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id          TEXT    NOT NULL REFERENCES pipeline_run (id) ON DELETE CASCADE,
    attempt         INTEGER NOT NULL,
    event           TEXT    NOT NULL,
    channel         TEXT    NOT NULL,
    kind            TEXT    NOT NULL CHECK (kind IN ('webhook', 'slack', 'email')),
    status          TEXT    NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    max_attempts    INTEGER NOT NULL,
    last_error      TEXT,
    payload         TEXT    NOT NULL,
    created_at      INTEGER NOT NULL,
    next_attempt_at INTEGER,
    claimed_until   INTEGER,
    updated_at      INTEGER NOT NULL,
    delivered_at    INTEGER,
    UNIQUE (run_id, attempt, event, channel)
);

-- The reconciler's scan: pending deliveries by when they are due.
CREATE INDEX notification_delivery_due ON notification_delivery (next_attempt_at, id)
    WHERE status = 'pending';
