-- Signed outbound webhooks: subscriptions, a queue of alarm lifecycle events to fan out, and a
-- durable delivery outbox (claimed with FOR UPDATE SKIP LOCKED, retried with backoff).
CREATE TABLE webhook_subscriptions (
    id          bigserial PRIMARY KEY,
    team_id     bigint REFERENCES teams(id),          -- NULL: every team of the installation
    url         text NOT NULL CHECK (url ~ '^https?://' AND length(url) <= 2000),
    -- Kept in clear: the server needs it to sign. Shown once, when the subscription is made.
    secret      text NOT NULL,
    events      text[] NOT NULL CHECK (cardinality(events) > 0),
    active      boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL,
    created_by  text NOT NULL
);

-- Filled in the same transaction as the alarm_history row (so no event is ever missed, whatever
-- order concurrent transactions commit in); emptied by the fan-out sweep. Plumbing only: which
-- subscription wants which event is decided in dosewatch.domain.webhooks.
CREATE TABLE alarm_event_queue (history_id bigint PRIMARY KEY);

CREATE FUNCTION alarm_history_to_event_queue() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM webhook_subscriptions WHERE active) THEN
        INSERT INTO alarm_event_queue (history_id) SELECT id FROM new_rows;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER alarm_history_to_event_queue AFTER INSERT ON alarm_history
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION alarm_history_to_event_queue();

CREATE TABLE webhook_deliveries (
    id              bigserial PRIMARY KEY,
    subscription_id bigint NOT NULL REFERENCES webhook_subscriptions(id),
    event_id        text NOT NULL,                    -- the idempotency key receivers dedupe on
    event_type      text NOT NULL,
    payload         jsonb NOT NULL,
    created_at      timestamptz NOT NULL,
    state           text NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'sending', 'sent', 'failed')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL,
    claimed_until   timestamptz,
    last_status     integer,
    last_error      text,
    delivered_at    timestamptz,
    UNIQUE (subscription_id, event_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at)
    WHERE state IN ('pending', 'sending');
