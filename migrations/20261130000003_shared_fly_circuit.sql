-- The organization's Fly circuit, shared by every replica: open while Fly is down (since when),
-- and which replica probes for recovery (until when its turn lasts). Unlogged: losing it with a
-- database crash only closes the circuit, and the next failures open it again.
CREATE UNLOGGED TABLE fly_circuit (
    org text PRIMARY KEY,
    open_since timestamptz,
    probe_owner text,
    probe_until timestamptz
);
