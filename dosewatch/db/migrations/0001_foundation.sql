-- Foundation schema. Times are timestamptz and stored in UTC.

CREATE TABLE patients (
    id          bigserial PRIMARY KEY,
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    phone       text NOT NULL,
    address     text,
    note        text,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE dispensers (
    id          text PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9_-]{3,64}$'),
    -- One patient each; a patient may (rarely) have a second dispenser.
    patient_id  bigint NOT NULL REFERENCES patients(id),
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Every version of a dispenser's schedule stays readable; the highest version is current.
CREATE TABLE schedules (
    dispenser_id text NOT NULL REFERENCES dispensers(id),
    version      integer NOT NULL,
    timezone     text NOT NULL,
    doses        jsonb NOT NULL,
    valid_from   date NOT NULL,
    created_at   timestamptz NOT NULL,
    PRIMARY KEY (dispenser_id, version)
);

-- Every expected dose. window_end is a timer: the sweep closes slots whose window_end has passed.
CREATE TABLE dose_slots (
    id            bigserial PRIMARY KEY,
    dispenser_id  text NOT NULL REFERENCES dispensers(id),
    due_at        timestamptz NOT NULL,
    window_end    timestamptz NOT NULL,
    state         text NOT NULL DEFAULT 'pending' CHECK (state IN
                  ('pending', 'taken', 'taken_late', 'missed', 'unknown', 'suspended')),
    schedule_version integer NOT NULL,
    taken_event_id text,
    closed_at     timestamptz,
    UNIQUE (dispenser_id, due_at),
    CHECK (window_end > due_at)
);
CREATE INDEX dose_slots_open_idx ON dose_slots (window_end) WHERE state = 'pending';

-- Idempotency ledger: one row per (dispenser, event_id) ever seen. Kept apart from dose_events
-- so dose_events can be a hypertable (whose unique keys must include the time column).
CREATE TABLE dose_event_keys (
    dispenser_id text NOT NULL,
    event_id     text NOT NULL,
    received_at  timestamptz NOT NULL,
    PRIMARY KEY (dispenser_id, event_id)
);

CREATE TABLE dose_events (
    dispenser_id text NOT NULL,
    event_id     text NOT NULL,
    seq          bigint NOT NULL,
    type         text NOT NULL,
    occurred_at  timestamptz NOT NULL,
    received_at  timestamptz NOT NULL,
    dose_due_at  timestamptz,
    doses_left   integer,
    slot_id      bigint,
    -- matched | unmatched | not_a_dose_event: unmatched dose events are listed, never dropped.
    match        text NOT NULL,
    payload      jsonb NOT NULL
);
CREATE INDEX dose_events_dispenser_idx ON dose_events (dispenser_id, occurred_at DESC);
CREATE INDEX dose_events_event_idx ON dose_events (dispenser_id, event_id);

CREATE TABLE dispenser_status (
    dispenser_id  text NOT NULL,
    at            timestamptz NOT NULL,
    received_at   timestamptz NOT NULL,
    battery_pct   smallint,
    on_mains      boolean,
    doses_left    integer,
    temperature_c real,
    firmware      text,
    rssi_dbm      smallint,
    schedule_version integer,
    payload       jsonb NOT NULL
);
CREATE INDEX dispenser_status_idx ON dispenser_status (dispenser_id, at DESC);

CREATE TABLE alarms (
    id              bigserial PRIMARY KEY,
    kind            text NOT NULL,
    dispenser_id    text NOT NULL REFERENCES dispensers(id),
    patient_id      bigint NOT NULL REFERENCES patients(id),
    slot_id         bigint REFERENCES dose_slots(id),
    slot_due_at     timestamptz,
    priority        text NOT NULL DEFAULT 'medium',
    opened_at       timestamptz NOT NULL,
    acknowledged_at timestamptz,
    acknowledged_by text,
    cleared_at      timestamptz,
    resolved_at     timestamptz,
    resolved_by     text,
    outcome         text,
    note            text,
    state           text GENERATED ALWAYS AS (
        CASE WHEN resolved_at IS NOT NULL THEN 'resolved'
             WHEN cleared_at IS NOT NULL THEN 'cleared'
             WHEN acknowledged_at IS NOT NULL THEN 'acknowledged'
             ELSE 'open' END) STORED,
    CHECK ((resolved_at IS NULL) = (outcome IS NULL))
);
-- The exactly-once guarantee: whatever number of sweeps race, one alarm per dose slot.
CREATE UNIQUE INDEX alarms_one_per_slot ON alarms (slot_id) WHERE slot_id IS NOT NULL;
CREATE INDEX alarms_state_idx ON alarms (state, opened_at DESC);

CREATE TABLE alarm_history (
    id        bigserial PRIMARY KEY,
    alarm_id  bigint NOT NULL REFERENCES alarms(id),
    at        timestamptz NOT NULL,
    action    text NOT NULL,   -- opened | acknowledged | cleared | resolved
    actor     text NOT NULL,   -- a user name, or 'system'
    via       text NOT NULL,   -- api | console | sms | phone | automatic
    detail    jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX alarm_history_alarm_idx ON alarm_history (alarm_id, at);

-- Everything the gateway could not accept, with the raw bytes and why.
CREATE TABLE quarantine (
    id           bigserial PRIMARY KEY,
    received_at  timestamptz NOT NULL,
    topic        text NOT NULL,
    payload      bytea NOT NULL,
    reason       text NOT NULL,
    dispenser_id text
);
CREATE INDEX quarantine_received_idx ON quarantine (received_at DESC);
