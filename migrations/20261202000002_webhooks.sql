-- Webhooks (docs/webhooks.md): registered endpoints receive instance changes as signed POSTs
-- from a durable outbox. A trigger writes the outbox rows in the transaction of the change, so a
-- committed change always has its deliveries and a rolled-back one never does.

-- An endpoint. Its signing secret is sealed with OPENCLAWS_SECRET_KEY (AES-256-GCM, bound to
-- `webhook/{id}`) and shown once, in the answer to its creation.
CREATE TABLE webhooks (
    id                uuid PRIMARY KEY,
    url               text NOT NULL,
    description       text NOT NULL DEFAULT '',
    event_types       text[] NOT NULL CHECK (cardinality(event_types) > 0),
    label_selector    text NOT NULL DEFAULT '',
    secret_nonce      bytea NOT NULL,
    secret_ciphertext bytea NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now()
);

-- The outbox: one row per change and endpoint that subscribes to one of its event types.
-- `change` is the `instance_changes` row of that version (what the API rendered then), so a
-- delivery describes the instance as of its change, whenever it is sent. Rows of one endpoint
-- and instance are sent in `resource_version` order: a row waits while an older one is pending.
CREATE TABLE webhook_deliveries (
    id               uuid PRIMARY KEY,
    webhook_id       uuid NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    instance_uid     uuid NOT NULL,
    instance_name    text NOT NULL,
    resource_version bigint NOT NULL,
    event_types      text[] NOT NULL,
    change           jsonb NOT NULL,
    state            text NOT NULL DEFAULT 'pending'
                     CHECK (state IN ('pending', 'delivered', 'failed', 'skipped')),
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    -- A replica sending the row holds it until then; a crashed replica's rows come back after.
    locked_until     timestamptz,
    last_status      integer,
    -- What went wrong, in a few words of our own (never the response body or the URL).
    last_error       text CHECK (length(last_error) <= 200),
    created_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    -- The retry window runs from here: the change, or a manual retry of a failed row.
    retry_from       timestamptz NOT NULL DEFAULT clock_timestamp(),
    delivered_at     timestamptz,
    UNIQUE (webhook_id, resource_version)
);
-- The claim: due pending rows, and the check for an older pending row of the same instance.
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at)
    WHERE state = 'pending';
CREATE INDEX webhook_deliveries_order
    ON webhook_deliveries (webhook_id, instance_uid, resource_version)
    WHERE state = 'pending';
-- An endpoint's recent deliveries (API, console).
CREATE INDEX webhook_deliveries_recent ON webhook_deliveries (webhook_id, created_at DESC);
-- Pruning of finished rows.
CREATE INDEX webhook_deliveries_finished ON webhook_deliveries (created_at)
    WHERE state <> 'pending';

-- What a condition change is: a condition's type, status or reason (not its message or time).
CREATE FUNCTION webhook_conditions(status jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT COALESCE(jsonb_agg(jsonb_build_array(c->>'type', c->>'status', c->>'reason')
                              ORDER BY c->>'type'), '[]'::jsonb)
      FROM jsonb_array_elements(CASE jsonb_typeof(status->'conditions')
                                WHEN 'array' THEN status->'conditions' ELSE '[]'::jsonb END) c
$$;

-- The ids of the pairing requests waiting for approval.
CREATE FUNCTION webhook_pairing_requests(status jsonb) RETURNS text[]
LANGUAGE sql IMMUTABLE AS $$
    SELECT COALESCE(array_agg(p->>'requestId'), '{}'::text[])
      FROM jsonb_array_elements(CASE jsonb_typeof(status->'pairing'->'pending')
                                WHEN 'array' THEN status->'pairing'->'pending'
                                ELSE '[]'::jsonb END) p
$$;

-- The event types of one versioned change of an instance.
CREATE FUNCTION webhook_event_types(op text, old_status jsonb, old_phase text,
                                    new_status jsonb, new_phase text) RETURNS text[]
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    types text[] := '{}';
BEGIN
    IF op = 'INSERT' THEN
        RETURN ARRAY['instance.created'];
    ELSIF op = 'DELETE' THEN
        RETURN ARRAY['instance.deleted'];
    END IF;
    IF new_phase IS DISTINCT FROM old_phase THEN
        types := types || 'instance.phase_changed'::text;
    END IF;
    IF webhook_conditions(new_status) IS DISTINCT FROM webhook_conditions(old_status) THEN
        types := types || 'instance.conditions_changed'::text;
    END IF;
    IF NOT webhook_pairing_requests(new_status) <@ webhook_pairing_requests(old_status) THEN
        types := types || 'instance.pairing_requested'::text;
    END IF;
    RETURN types;
END $$;

-- Runs after `instances_log_change` (triggers of one event fire in name order), so the change
-- row of this version exists. A delete's version is the one the log trigger just took in this
-- session (`currval`). Endpoints are filtered by event type here; the label selector is
-- matched when the row is sent (a row it excludes ends `skipped`).
CREATE FUNCTION instances_webhooks() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    version bigint;
    types text[];
    row_uid uuid;
    row_name text;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM webhooks) THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'DELETE' THEN
        version := currval('instance_resource_version');
        types := webhook_event_types(TG_OP, NULL, NULL, NULL, NULL);
        row_uid := OLD.uid;
        row_name := OLD.name;
    ELSIF TG_OP = 'INSERT' THEN
        version := NEW.resource_version;
        types := webhook_event_types(TG_OP, NULL, NULL, NEW.status, NEW.phase);
        row_uid := NEW.uid;
        row_name := NEW.name;
    ELSE
        IF NEW.resource_version IS NOT DISTINCT FROM OLD.resource_version THEN
            RETURN NULL;
        END IF;
        version := NEW.resource_version;
        types := webhook_event_types(TG_OP, OLD.status, OLD.phase, NEW.status, NEW.phase);
        row_uid := NEW.uid;
        row_name := NEW.name;
    END IF;
    IF cardinality(types) = 0 THEN
        RETURN NULL;
    END IF;
    INSERT INTO webhook_deliveries (id, webhook_id, instance_uid, instance_name,
                                    resource_version, event_types, change)
    SELECT gen_random_uuid(), w.id, row_uid, row_name, version,
           ARRAY(SELECT t FROM unnest(types) t WHERE t = ANY (w.event_types)),
           (SELECT to_jsonb(c) FROM instance_changes c WHERE c.resource_version = version)
      FROM webhooks w
     WHERE w.event_types && types;
    RETURN NULL;
END $$;

CREATE TRIGGER instances_webhooks AFTER INSERT OR UPDATE OR DELETE ON instances
    FOR EACH ROW EXECUTE FUNCTION instances_webhooks();
