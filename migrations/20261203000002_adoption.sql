-- Adoption (docs/adoption.md): an app the old web app built, taken over by an instance. Such an
-- app was created without our per-instance network, which cannot be changed afterwards, so this
-- row is its ownership mark. The app name is unique: two concurrent imports of one app adopt it
-- once. The volume and machine ids are filled in by the reconcile that verified the app's
-- layout (`adopted_at`); until then the app is only claimed, and a deletion leaves it alone.
CREATE TABLE adoptions (
    instance_uid uuid PRIMARY KEY REFERENCES instances (uid) ON DELETE CASCADE,
    app_name     text NOT NULL UNIQUE,
    volume_id    text,
    machine_id   text,
    requested_at timestamptz NOT NULL DEFAULT now(),
    adopted_at   timestamptz,
    CHECK ((adopted_at IS NULL) = (volume_id IS NULL AND machine_id IS NULL))
);
