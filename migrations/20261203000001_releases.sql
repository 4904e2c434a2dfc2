-- Releases (docs/releases.md): an image rolled out across the fleet in waves with health gates.
-- Everything a release needs to resume after a restart lives here; the worker that steps it
-- holds the release row's lock for the length of one step.

CREATE TABLE releases (
    uid          uuid PRIMARY KEY,
    name         text NOT NULL UNIQUE,
    -- The spec as written (defaults applied); immutable.
    spec         jsonb NOT NULL,
    phase        text NOT NULL DEFAULT 'Pending',
    -- The wave being rolled (0: the canary).
    wave         integer NOT NULL DEFAULT 0,
    message      text NOT NULL DEFAULT '',
    -- An operator's pause; the phase shows `Paused` while it holds.
    paused       boolean NOT NULL DEFAULT false,
    -- An operator's abort: 'Rollback' or 'Stop' (what to do with the updated instances).
    abort        text,
    created_by   text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    started_at   timestamptz,
    finished_at  timestamptz,
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- At most one release runs at a time, so no instance is ever claimed by two.
CREATE UNIQUE INDEX releases_one_running ON releases ((true)) WHERE finished_at IS NULL;
CREATE INDEX releases_created ON releases (created_at DESC);

-- The instances a release covers, frozen when it starts.
CREATE TABLE release_members (
    release_uid    uuid NOT NULL REFERENCES releases (uid) ON DELETE CASCADE,
    instance_uid   uuid NOT NULL,
    instance_name  text NOT NULL,
    -- Order within the release (by name): waves are contiguous runs of it.
    position       integer NOT NULL,
    wave           integer NOT NULL,
    -- The image the instance ran before (what a rollback restores).
    previous_image text NOT NULL,
    state          text NOT NULL DEFAULT 'Pending',
    -- The instance generation our last image write produced: health is judged at or after it.
    generation     bigint,
    started_at     timestamptz,
    deadline       timestamptz,
    finished_at    timestamptz,
    message        text NOT NULL DEFAULT '',
    PRIMARY KEY (release_uid, instance_uid)
);

CREATE INDEX release_members_order ON release_members (release_uid, position);

-- What happened to a release, for people (the API, the console, `release status`).
CREATE TABLE release_events (
    id          bigserial PRIMARY KEY,
    release_uid uuid NOT NULL REFERENCES releases (uid) ON DELETE CASCADE,
    type        text NOT NULL,
    reason      text NOT NULL,
    message     text NOT NULL,
    actor       text,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX release_events_release ON release_events (release_uid, id);
