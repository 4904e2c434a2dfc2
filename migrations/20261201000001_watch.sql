-- Watch (docs/watch.md): `resource_version` comes from one database-wide sequence and moves on
-- every change of what the API shows of an instance (status included); every such change is
-- appended to `instance_changes`, which watches read in version order.
--
-- Transactions commit out of sequence order, so a reader must not pass a version that is still
-- in flight. A writer takes a ticket (`watch_ticket`): a transaction-scoped shared advisory lock
-- keyed by the sequence's last value, taken before its own `nextval`; `watch_horizon` is the
-- highest version below every ticket still held, so every version up to it is committed (and
-- visible to a later statement) or rolled back. Writers never wait for each other here.

-- Ticket namespaces (the top 16 bits of the advisory lock key): 'rv' for instance versions,
-- 'ev' for event ids. The fleet watch's lock (0x6f63...) is outside both.

-- The next value of `seq`, after a ticket that holds back `watch_horizon(seq, namespace)` below
-- it until this transaction ends. A transaction takes one ticket per namespace: its first is
-- below every value it takes later, so one is enough (and a bulk update of many rows does not
-- fill the lock table). A transaction-local setting remembers it (rolled back with a savepoint,
-- like the lock).
CREATE FUNCTION watch_ticket(seq regclass, namespace bigint) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    held text := 'openclaws.watch_ticket_' || namespace;
BEGIN
    IF COALESCE(current_setting(held, true), '') = '' THEN
        PERFORM pg_advisory_xact_lock_shared(
            (namespace << 48) | COALESCE(pg_sequence_last_value(seq), 0));
        PERFORM set_config(held, 'held', true);
    END IF;
    RETURN nextval(seq);
END $$;

-- The highest value of `seq` such that no transaction still holding a ticket of `namespace`
-- can commit a value at or below it. Reads the sequence first, then the tickets.
CREATE FUNCTION watch_horizon(seq regclass, namespace bigint) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    issued bigint;
    held bigint;
BEGIN
    issued := COALESCE(pg_sequence_last_value(seq), 0);
    SELECT min(((l.classid::bigint << 32) | l.objid::bigint) & ((1::bigint << 48) - 1))
      INTO held
      FROM pg_locks l
     WHERE l.locktype = 'advisory' AND l.objsubid = 1
       AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
       AND (l.classid::bigint >> 16) = namespace;
    RETURN LEAST(issued, COALESCE(held, issued));
END $$;

CREATE SEQUENCE instance_resource_version AS bigint;
-- Existing per-row versions stay valid preconditions; new ones are above all of them.
SELECT setval('instance_resource_version', max(resource_version))
  FROM instances HAVING max(resource_version) IS NOT NULL;

-- Append-only log of instance changes, pruned after a retention window. Holds what the API
-- renders of the object at that version, and the labels and phase before it (selectors see an
-- object enter or leave a watch).
CREATE TABLE instance_changes (
    resource_version   bigint PRIMARY KEY,
    type               text NOT NULL CHECK (type IN ('ADDED', 'MODIFIED', 'DELETED')),
    uid                uuid NOT NULL,
    name               text NOT NULL,
    customer_id        text NOT NULL,
    labels             jsonb NOT NULL,
    spec               jsonb NOT NULL,
    generation         bigint NOT NULL,
    created_at         timestamptz NOT NULL,
    deletion_timestamp timestamptz,
    status             jsonb NOT NULL,
    phase              text NOT NULL,
    old_labels         jsonb,
    old_phase          text,
    changed_at         timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX instance_changes_changed_at ON instance_changes (changed_at);

-- Every version at or below `through` has been pruned (or predates the log): resuming from
-- below it is 410 Gone.
CREATE TABLE instance_changes_compacted (
    one     boolean PRIMARY KEY DEFAULT true CHECK (one),
    through bigint NOT NULL
);
INSERT INTO instance_changes_compacted (through)
SELECT COALESCE(pg_sequence_last_value('instance_resource_version'), 0);

-- A new version for an insert and for an update that changes anything the API shows or a
-- selector reads; an update of bookkeeping only (snapshots, leases, pairing window) or one that
-- writes identical values keeps the version.
CREATE FUNCTION instances_version() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE'
       AND (NEW.name, NEW.customer_id, NEW.labels, NEW.spec, NEW.generation,
            NEW.deletion_timestamp, NEW.status, NEW.phase, NEW.observed_generation)
           IS NOT DISTINCT FROM
           (OLD.name, OLD.customer_id, OLD.labels, OLD.spec, OLD.generation,
            OLD.deletion_timestamp, OLD.status, OLD.phase, OLD.observed_generation) THEN
        NEW.resource_version := OLD.resource_version;
    ELSE
        NEW.resource_version := watch_ticket('instance_resource_version', 29302);
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER instances_version BEFORE INSERT OR UPDATE ON instances
    FOR EACH ROW EXECUTE FUNCTION instances_version();

-- Logs each versioned change (a delete takes a version of its own). No NOTIFY: PostgreSQL
-- serializes the commits of notifying transactions, which made concurrent status writes three
-- times slower; watchers poll the sequences instead (docs/watch.md).
CREATE FUNCTION instances_log_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        INSERT INTO instance_changes (resource_version, type, uid, name, customer_id, labels,
            spec, generation, created_at, deletion_timestamp, status, phase, old_labels, old_phase)
        VALUES (watch_ticket('instance_resource_version', 29302), 'DELETED', OLD.uid, OLD.name,
            OLD.customer_id, OLD.labels, OLD.spec, OLD.generation, OLD.created_at,
            OLD.deletion_timestamp, OLD.status, OLD.phase, OLD.labels, OLD.phase);
    ELSIF TG_OP = 'INSERT' OR NEW.resource_version IS DISTINCT FROM OLD.resource_version THEN
        INSERT INTO instance_changes (resource_version, type, uid, name, customer_id, labels,
            spec, generation, created_at, deletion_timestamp, status, phase, old_labels, old_phase)
        VALUES (NEW.resource_version, CASE TG_OP WHEN 'INSERT' THEN 'ADDED' ELSE 'MODIFIED' END,
            NEW.uid, NEW.name, NEW.customer_id, NEW.labels, NEW.spec, NEW.generation,
            NEW.created_at, NEW.deletion_timestamp, NEW.status, NEW.phase,
            CASE TG_OP WHEN 'UPDATE' THEN OLD.labels END,
            CASE TG_OP WHEN 'UPDATE' THEN OLD.phase END);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER instances_log_change AFTER INSERT OR UPDATE OR DELETE ON instances
    FOR EACH ROW EXECUTE FUNCTION instances_log_change();

-- Event ids take tickets too, so a watch of an instance's events never passes an id still being
-- committed.
ALTER TABLE events ALTER COLUMN id SET DEFAULT watch_ticket('events_id_seq', 25974);
