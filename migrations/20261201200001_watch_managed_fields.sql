-- Field ownership (`managed_fields`, shown as `metadata.managedFields`) is part of what the API
-- shows: a change of it alone moves `resourceVersion` too, and the change log carries it so a
-- watch renders objects exactly as GET does.
ALTER TABLE instance_changes ADD COLUMN managed_fields jsonb NOT NULL DEFAULT '{}'::jsonb;

CREATE OR REPLACE FUNCTION instances_version() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE'
       AND (NEW.name, NEW.customer_id, NEW.labels, NEW.spec, NEW.generation,
            NEW.deletion_timestamp, NEW.status, NEW.phase, NEW.observed_generation,
            NEW.managed_fields)
           IS NOT DISTINCT FROM
           (OLD.name, OLD.customer_id, OLD.labels, OLD.spec, OLD.generation,
            OLD.deletion_timestamp, OLD.status, OLD.phase, OLD.observed_generation,
            OLD.managed_fields) THEN
        NEW.resource_version := OLD.resource_version;
    ELSE
        NEW.resource_version := watch_ticket('instance_resource_version', 29302);
    END IF;
    RETURN NEW;
END $$;

CREATE OR REPLACE FUNCTION instances_log_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        INSERT INTO instance_changes (resource_version, type, uid, name, customer_id, labels,
            spec, generation, created_at, deletion_timestamp, status, phase, old_labels, old_phase,
            managed_fields)
        VALUES (watch_ticket('instance_resource_version', 29302), 'DELETED', OLD.uid, OLD.name,
            OLD.customer_id, OLD.labels, OLD.spec, OLD.generation, OLD.created_at,
            OLD.deletion_timestamp, OLD.status, OLD.phase, OLD.labels, OLD.phase,
            OLD.managed_fields);
    ELSIF TG_OP = 'INSERT' OR NEW.resource_version IS DISTINCT FROM OLD.resource_version THEN
        INSERT INTO instance_changes (resource_version, type, uid, name, customer_id, labels,
            spec, generation, created_at, deletion_timestamp, status, phase, old_labels, old_phase,
            managed_fields)
        VALUES (NEW.resource_version, CASE TG_OP WHEN 'INSERT' THEN 'ADDED' ELSE 'MODIFIED' END,
            NEW.uid, NEW.name, NEW.customer_id, NEW.labels, NEW.spec, NEW.generation,
            NEW.created_at, NEW.deletion_timestamp, NEW.status, NEW.phase,
            CASE TG_OP WHEN 'UPDATE' THEN OLD.labels END,
            CASE TG_OP WHEN 'UPDATE' THEN OLD.phase END,
            NEW.managed_fields);
    END IF;
    RETURN NULL;
END $$;
