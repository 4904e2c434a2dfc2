-- Pairing subscriptions (docs/pairing.md): which replica holds an instance's gateway
-- subscription. One row per held instance; a replica takes a row that is free or expired and
-- renews its own every second. A replica whose row lapsed or passed to another stops acting.
CREATE TABLE pairing_holders (
    instance_uid uuid PRIMARY KEY REFERENCES instances (uid) ON DELETE CASCADE,
    owner        text NOT NULL,
    expires_at   timestamptz NOT NULL
);
