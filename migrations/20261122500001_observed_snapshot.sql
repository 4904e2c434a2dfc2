-- The world the controller's last reconcile planned from (app, volumes, machines, secret names and
-- the fingerprint of our last write, addresses, certificate, DNS records, the gateway look) and when
-- it was read, so the API can preview the next plan without calling Fly. Never holds secret values.
ALTER TABLE instances ADD COLUMN observed jsonb;
ALTER TABLE instances ADD COLUMN observed_at timestamptz;
