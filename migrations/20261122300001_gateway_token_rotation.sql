-- The spec's gatewayTokenRotation the stored gateway token was generated for: a different value in
-- the spec means "rotate", and the controller generates a new token once.
ALTER TABLE instances ADD COLUMN gateway_token_rotation bigint NOT NULL DEFAULT 0;
