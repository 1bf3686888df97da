-- SCAIP forwarding to an alarm receiving centre: per team, which kinds go where, and a durable
-- outbox of forwards (one per alarm: the centre's reference), retried like every other outbox.
CREATE TABLE scaip_settings (
    team_id       bigint PRIMARY KEY REFERENCES teams(id),
    centre_uri    text NOT NULL CHECK (centre_uri ~ '^sips?:' AND length(centre_uri) <= 500),
    controller_id text NOT NULL CHECK (length(controller_id) BETWEEN 1 AND 64),
    kinds         text[] NOT NULL,
    active        boolean NOT NULL DEFAULT true,
    updated_at    timestamptz NOT NULL,
    updated_by    text NOT NULL
);

CREATE TABLE scaip_forwards (
    id              bigserial PRIMARY KEY,
    alarm_id        bigint NOT NULL UNIQUE REFERENCES alarms(id),
    team_id         bigint NOT NULL REFERENCES teams(id),
    ref             text NOT NULL,
    centre_uri      text NOT NULL,
    body            bytea NOT NULL,
    created_at      timestamptz NOT NULL,
    state           text NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'sending', 'received', 'failed')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL,
    claimed_until   timestamptz,
    last_code       integer,
    last_reason     text,
    received_at     timestamptz
);
CREATE INDEX scaip_forwards_due ON scaip_forwards (next_attempt_at)
    WHERE state IN ('pending', 'sending');

-- The alarm-event queue now also feeds SCAIP forwarding.
CREATE OR REPLACE FUNCTION alarm_history_to_event_queue() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM webhook_subscriptions WHERE active)
       OR EXISTS (SELECT 1 FROM scaip_settings WHERE active) THEN
        INSERT INTO alarm_event_queue (history_id) SELECT id FROM new_rows;
    END IF;
    RETURN NULL;
END $$;
