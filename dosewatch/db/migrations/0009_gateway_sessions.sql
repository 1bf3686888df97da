-- The installation's identity: one row, made at the first migrate and never changed. The
-- gateway's default MQTT client id is derived from it ("dosewatch-gw-" + its first 12 hex
-- digits), so two installations sharing a broker never share a session, while one installation,
-- restarted or upgraded (pg_upgrade, dump and restore), keeps its id and its queued messages.
-- A database cloned from another installation's inherits its id: give the clone its own with
-- UPDATE installation SET id = gen_random_uuid();
CREATE TABLE installation (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO installation DEFAULT VALUES;

-- What each gateway process of this installation knows about its broker session, written by
-- the gateway (gateway/session.py) and read by /api/v1/health and /metrics in any web process.
-- 'yielded': another client took the session with the same client id and was there first;
-- this gateway stores nothing and retries at retry_at.
CREATE TABLE gateway_sessions (
    client_id text PRIMARY KEY,
    state text NOT NULL CHECK (state IN ('connecting', 'connected', 'yielded', 'stopped')),
    broker text NOT NULL,
    host text NOT NULL,
    pid integer NOT NULL,
    since timestamptz NOT NULL,
    takeovers integer NOT NULL DEFAULT 0 CHECK (takeovers >= 0),
    last_takeover_at timestamptz,
    retry_at timestamptz,
    -- the gateway's heartbeat: a row not refreshed for a while is a process that is gone
    seen_at timestamptz NOT NULL
);
