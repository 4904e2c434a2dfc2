-- What the controller last set as the Fly app's secrets: a keyed fingerprint of the values (never
-- the values) and the secrets version Fly returned, passed as min_secrets_version to machines.
ALTER TABLE instances ADD COLUMN fly_secrets_fingerprint text;
ALTER TABLE instances ADD COLUMN fly_secrets_version bigint;
