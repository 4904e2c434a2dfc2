-- Audit trail (issue 12): who made the write an event records, as which field manager, and
-- which fields it changed. Names only: `changed_fields` holds JSON Pointers into
-- `{"metadata": {"labels"}, "spec"}` (a provider key shows as `/spec/providerKeys/<key>`),
-- never a value or a fingerprint. `actor` is what the authentication layer knows of the caller:
-- `writer` or `reader` (the API token's role, never the token) or `console:<session>` (a support
-- console session, by the first characters of its random id). All three stay NULL on events the
-- controller records.
ALTER TABLE events
    ADD COLUMN actor          text,
    ADD COLUMN field_manager  text,
    ADD COLUMN changed_fields text[];

-- Pruning (`OPENCLAWS_EVENT_RETENTION`) deletes by `created_at` in batches of ids; the existing
-- `events_created_at` index finds them, so no index is added here.
