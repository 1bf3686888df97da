-- The rest of the dispenser protocol on the server side: the latest status per dispenser,
-- sequence gaps (possible lost events), doses left and refills (the refill worklist), the
-- status heartbeat for online tracking, and the config down-link (published vs applied).

-- The newest status snapshot per dispenser, by the device's own `at` (a status delivered late
-- or again never replaces a newer one). dispenser_status keeps the full history.
CREATE TABLE dispenser_latest_status (
    dispenser_id     text PRIMARY KEY REFERENCES dispensers(id),
    at               timestamptz NOT NULL,   -- device time of the snapshot
    received_at      timestamptz NOT NULL,   -- server time it arrived
    battery_pct      smallint,
    on_mains         boolean,
    doses_left       integer,
    temperature_c    real,
    firmware         text,
    rssi_dbm         smallint,
    schedule_version integer
);

-- Per dispenser, the lowest and highest event `seq` stored. Every `seq` between them that has
-- not been stored is in dispenser_seq_gaps: a gap shrinks (or disappears) when a late event fills
-- it, so the open gaps depend only on which events arrived, not on their order.
CREATE TABLE dispenser_seq (
    dispenser_id text PRIMARY KEY REFERENCES dispensers(id),
    min_seq      bigint NOT NULL,
    max_seq      bigint NOT NULL,
    updated_at   timestamptz NOT NULL,
    CHECK (min_seq <= max_seq)
);

-- Runs of `seq` not (yet) received: events the device may have lost. detected_at is the server
-- time the run was first noticed (a run split by a late event keeps it).
CREATE TABLE dispenser_seq_gaps (
    dispenser_id text NOT NULL REFERENCES dispensers(id),
    from_seq     bigint NOT NULL,
    to_seq       bigint NOT NULL,
    detected_at  timestamptz NOT NULL,
    PRIMARY KEY (dispenser_id, from_seq),
    CHECK (from_seq <= to_seq)
);

-- Doses left: the newest value by device time from `dose_taken`, `refill` (doses_left) or a
-- status, whichever is newest, for the refill worklist.
CREATE TABLE dispenser_supply (
    dispenser_id    text PRIMARY KEY REFERENCES dispensers(id),
    doses_left      integer NOT NULL,
    doses_left_at   timestamptz NOT NULL,   -- device time of the report
    source          text NOT NULL,          -- event type or 'status'
    updated_at      timestamptz NOT NULL
);
CREATE INDEX dispenser_supply_low_idx ON dispenser_supply (doses_left);

-- Every refill event.
CREATE TABLE dispenser_refills (
    dispenser_id text NOT NULL REFERENCES dispensers(id),
    event_id     text NOT NULL,
    at           timestamptz NOT NULL,   -- device time (occurred_at)
    received_at  timestamptz NOT NULL,
    doses_loaded integer,
    doses_left   integer,
    staff_id     text,
    PRIMARY KEY (dispenser_id, event_id)
);
CREATE INDEX dispenser_refills_at_idx ON dispenser_refills (dispenser_id, at DESC);

-- The status heartbeat: server time of the newest live (not retained) status. A dispenser with
-- none for DOSEWATCH_OFFLINE_AFTER_MIN is marked offline (source 'heartbeat_timeout'), and the
-- next live status marks it online again (source 'heartbeat').
ALTER TABLE dispenser_presence ADD COLUMN last_status_at timestamptz;
CREATE INDEX dispenser_presence_heartbeat_idx ON dispenser_presence (last_status_at)
    WHERE online IS NOT FALSE;

-- The config down-link: which schedule version was last published to the device, and which it
-- says it follows (`config_applied` event, or `schedule_version` in a status).
CREATE TABLE dispenser_config_state (
    dispenser_id      text PRIMARY KEY REFERENCES dispensers(id),
    published_version integer,
    published_at      timestamptz,
    applied_version   integer,
    applied_at        timestamptz,            -- server time the applied version was received
    applied_source    text                    -- 'config_applied' | 'status'
);
