-- An idle controller costs (almost) no transactions: its loops sleep until PostgreSQL tells them
-- something happened, and the dispatcher finds its next due time through indexes.

-- The dispatcher's "when is the next key due": the earliest free key, and the few leased ones.
CREATE INDEX work_due_free ON work (due_at) WHERE lease_expires_at IS NULL;
CREATE INDEX work_leased ON work (lease_expires_at) WHERE lease_expires_at IS NOT NULL;

-- New outbox rows wake the webhook workers (once per statement that inserted any).
CREATE FUNCTION webhook_deliveries_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM inserted) THEN
        PERFORM pg_notify('openclaws_webhooks', '');
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER webhook_deliveries_notify AFTER INSERT ON webhook_deliveries
    REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION webhook_deliveries_notify();

-- A release written or changed (created, paused, resumed, aborted, stepped) wakes the release
-- workers.
CREATE FUNCTION releases_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('openclaws_releases', '');
    RETURN NULL;
END $$;

CREATE TRIGGER releases_notify AFTER INSERT OR UPDATE ON releases
    FOR EACH STATEMENT EXECUTE FUNCTION releases_notify();

-- The shared Fly circuit opened or closed: every replica holds or resumes its calls at once.
CREATE FUNCTION fly_circuit_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' OR OLD.open_since IS DISTINCT FROM NEW.open_since THEN
        PERFORM pg_notify('openclaws_circuit', '');
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER fly_circuit_notify AFTER INSERT OR UPDATE OF open_since ON fly_circuit
    FOR EACH ROW EXECUTE FUNCTION fly_circuit_notify();
