-- Fly's rate limits, shared by every replica so that together they stay under them.
-- Unlogged: the state is seconds long, and losing it with a database crash only lets one
-- burst through.

-- One row per limited key (action and scope): GCRA's theoretical arrival time.
CREATE UNLOGGED TABLE fly_rate (
    key text PRIMARY KEY,
    tat timestamptz NOT NULL
);

-- An organization's line for app creation or deletion: the next slot to hand out and the
-- last time a holder was let through.
CREATE UNLOGGED TABLE fly_line (
    line text PRIMARY KEY,
    next_at timestamptz NOT NULL,
    last_sent timestamptz
);

-- Slots kept for holders (apps) waiting in a line.
CREATE UNLOGGED TABLE fly_line_slot (
    line text NOT NULL,
    holder text NOT NULL,
    at timestamptz NOT NULL,
    PRIMARY KEY (line, holder)
);

-- After a takeover from a lapsed lease, the key is looked at again once whatever the previous
-- holder had in flight has landed or timed out (a stray volume or machine is found then).
ALTER TABLE work ADD COLUMN recheck_at timestamptz;
