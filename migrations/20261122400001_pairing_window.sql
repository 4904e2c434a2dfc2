-- Until when the controller looks at an instance's gateway every few seconds because a device
-- may be pairing (the dashboard read the gateway token, or the gateway just became ready).
ALTER TABLE instances ADD COLUMN pairing_window_until timestamptz;
