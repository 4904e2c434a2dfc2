-- Instances that are not Ready, as the stuck sweep tracks them (README, "Stuck instances"):
-- since when the current generation has waited, why (and since when for that reason), and
-- which reason was reported to Sentry when (once per reason). No foreign key: a row whose
-- instance is gone is how the sweep learns to resolve it.
CREATE TABLE stuck_instances (
    instance_uid    uuid PRIMARY KEY,
    instance_name   text NOT NULL,
    generation      bigint NOT NULL,
    since           timestamptz NOT NULL,
    reason          text NOT NULL,
    reason_since    timestamptz NOT NULL,
    reported_reason text,
    reported_at     timestamptz
);
