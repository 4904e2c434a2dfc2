-- The API's labelSelector filters with `labels @> '{"key":"value"}'` (=, !=, in, notin) and
-- `labels ? 'key'` (existence); the default jsonb GIN operator class serves both, so a selective
-- selector need not read every row.
CREATE INDEX instances_labels ON instances USING gin (labels);
