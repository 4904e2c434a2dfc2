-- The observation snapshot (the world a reconcile planned from, kept for the API's plan
-- preview) is ~20 KB of JSON, stored out of line (TOAST). Rewriting it on every status write
-- grew the TOAST area without bound under a write storm; its digest (of the world without its
-- times) lets a status write keep the stored snapshot when nothing in it changed.
ALTER TABLE instances ADD COLUMN observed_digest text;
