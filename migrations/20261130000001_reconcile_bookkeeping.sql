-- Bookkeeping the reconcile reads with the row and writes with its status, so metrics need no
-- queries of the event history:
-- first_ready_at: when the instance was first Ready (time to first Ready is counted once);
-- drift_repairs: the kinds of the repair steps taken since drift was last detected, while that
-- drift is not repaired yet (NULL when none is open), so a repair over several reconciles is
-- counted by what it repaired.
ALTER TABLE instances ADD COLUMN first_ready_at timestamptz;
ALTER TABLE instances ADD COLUMN drift_repairs text[];

UPDATE instances i SET first_ready_at = (
    SELECT min(e.created_at) FROM events e
    WHERE e.instance_uid = i.uid AND e.reason = 'PhaseReady'
);

-- Open drift (detected, not repaired yet): the kinds are worked out again from the conditions
-- when it is repaired, as before.
UPDATE instances i SET drift_repairs = '{}'
WHERE i.phase = 'Degraded'
  AND EXISTS (SELECT 1 FROM events e WHERE e.instance_uid = i.uid AND e.reason = 'DriftDetected');
