-- Versioned schedules effective from a moment, who made each version, per-dose details on
-- slots, and absences that suspend slots.

ALTER TABLE schedules
    ADD COLUMN effective_from timestamptz,
    ADD COLUMN valid_until    date,
    ADD COLUMN created_by     text NOT NULL DEFAULT 'system';
UPDATE schedules SET effective_from = created_at WHERE effective_from IS NULL;
ALTER TABLE schedules ALTER COLUMN effective_from SET NOT NULL;
CREATE INDEX schedules_effective_idx ON schedules (dispenser_id, effective_from);

CREATE TABLE absences (
    id           bigserial PRIMARY KEY,
    dispenser_id text NOT NULL REFERENCES dispensers(id),
    starts_at    timestamptz NOT NULL,
    ends_at      timestamptz NOT NULL,
    reason       text NOT NULL CHECK (length(reason) BETWEEN 1 AND 500),
    created_by   text NOT NULL,
    created_at   timestamptz NOT NULL,
    ended_at     timestamptz,   -- set when the pause is ended early
    ended_by     text,
    CHECK (ends_at > starts_at)
);
CREATE INDEX absences_dispenser_idx ON absences (dispenser_id, starts_at);

ALTER TABLE dose_slots
    ADD COLUMN label         text,
    ADD COLUMN time_critical boolean NOT NULL DEFAULT false,
    ADD COLUMN local_time    time,
    ADD COLUMN absence_id    bigint REFERENCES absences(id);
UPDATE dose_slots s SET local_time = (s.due_at AT TIME ZONE sc.timezone)::time
FROM schedules sc
WHERE sc.dispenser_id = s.dispenser_id AND sc.version = s.schedule_version AND s.local_time IS NULL;
