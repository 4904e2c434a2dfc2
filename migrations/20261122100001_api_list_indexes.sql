-- The API lists instances in byte order of name (stable cursor pagination), optionally per customer.
CREATE INDEX instances_name_c ON instances (name COLLATE "C");
CREATE INDEX instances_customer_name_c ON instances (customer_id, name COLLATE "C");
