-- Desired state, controller bookkeeping, the durable work queue, history and encrypted secrets.
-- See shared design section 2: the API writes `spec` and enqueues; only the controller writes `status`.

CREATE TABLE instances (
    uid                 uuid PRIMARY KEY,
    name                text NOT NULL UNIQUE,
    customer_id         text NOT NULL,
    labels              jsonb NOT NULL DEFAULT '{}'::jsonb,
    -- Desired state as written through the API, defaults applied, secrets replaced by references.
    spec                jsonb NOT NULL,
    -- Bumped only when `spec` changes.
    generation          bigint NOT NULL DEFAULT 1,
    -- Bumped on every write (spec, labels, deletion, status): the optimistic concurrency token.
    resource_version    bigint NOT NULL DEFAULT 1,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    deletion_timestamp  timestamptz,
    -- Observed state, written only by the controller.
    status              jsonb NOT NULL DEFAULT '{}'::jsonb,
    phase               text NOT NULL DEFAULT 'Pending',
    observed_generation bigint NOT NULL DEFAULT 0,
    fly_app             text,
    fly_volume_id       text,
    fly_machine_id      text
);

CREATE INDEX instances_customer_id ON instances (customer_id);
CREATE INDEX instances_phase ON instances (phase);

-- One row per instance: the durable work queue. Resync and backoff are future `due_at` values.
CREATE TABLE work (
    instance_uid     uuid PRIMARY KEY REFERENCES instances (uid) ON DELETE CASCADE,
    due_at           timestamptz NOT NULL DEFAULT now(),
    -- Last time the API asked for a visit; a reconcile that claimed earlier must run again.
    enqueued_at      timestamptz NOT NULL DEFAULT now(),
    reason           text NOT NULL DEFAULT 'created',
    attempts         integer NOT NULL DEFAULT 0,
    lease_owner      text,
    lease_expires_at timestamptz,
    claimed_at       timestamptz
);

CREATE INDEX work_due ON work (due_at);

-- Append-only history, kept after the instance row is gone (tombstones).
CREATE TABLE events (
    id             bigserial PRIMARY KEY,
    instance_uid   uuid NOT NULL,
    instance_name  text NOT NULL,
    type           text NOT NULL,
    reason         text NOT NULL,
    message        text NOT NULL,
    generation     bigint,
    created_at     timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX events_instance ON events (instance_uid, id);
CREATE INDEX events_name ON events (instance_name, id);
CREATE INDEX events_created_at ON events (created_at);

-- Encrypted values (AES-256-GCM). Never returned by the API.
CREATE TABLE secrets (
    id           uuid PRIMARY KEY,
    instance_uid uuid NOT NULL REFERENCES instances (uid) ON DELETE CASCADE,
    name         text NOT NULL,
    nonce        bytea NOT NULL,
    ciphertext   bytea NOT NULL,
    fingerprint  text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (instance_uid, name)
);
