-- Presence: whether each dispenser is online, when it was last heard from, and how far its clock
-- is off. One row per dispenser, kept current by the gateway; the sweep reads it to tell a dose
-- that was missed from one the server cannot know about (slot state 'unknown').

CREATE TABLE dispenser_presence (
    dispenser_id      text PRIMARY KEY REFERENCES dispensers(id),
    online            boolean,           -- last value on the `online` topic (NULL = never said)
    online_changed_at timestamptz,       -- server time of the last change of `online`
    last_seen_at      timestamptz,       -- server receive time of the latest message of any kind
    clock_offset_s    double precision,  -- estimated device clock minus server clock, seconds
    clock_samples     jsonb NOT NULL DEFAULT '[]',  -- recent samples (seconds) behind the estimate
    clock_flagged     boolean NOT NULL DEFAULT false,
    updated_at        timestamptz NOT NULL
);

-- Every change of `online`, for the console's timeline and for deciding 'unknown' after the fact.
-- source: 'lwt_or_topic' for the online topic (the device's own '1' or its Last Will '0'); a
-- heartbeat tracker will add its own sources. No foreign key, like the other history tables, so
-- it can become a hypertable later.
CREATE TABLE dispenser_online_history (
    dispenser_id text NOT NULL,
    at           timestamptz NOT NULL,
    online       boolean NOT NULL,
    source       text NOT NULL
);
CREATE INDEX dispenser_online_history_idx ON dispenser_online_history (dispenser_id, at DESC);
