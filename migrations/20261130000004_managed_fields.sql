-- Field ownership (server-side apply): field manager name -> the JSON Pointers it owns in
-- {"metadata": {"labels"}, "spec"}. Empty for instances nobody applied or wrote with a manager.
ALTER TABLE instances ADD COLUMN managed_fields jsonb NOT NULL DEFAULT '{}'::jsonb;
