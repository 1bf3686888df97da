-- The adherence rollup: slot counts by state per dispenser and local day, kept current by the
-- service (dosewatch/db/rollups.py) on plain PostgreSQL and TimescaleDB alike.
--
-- Why not a continuous aggregate: dose_slots is a mutable state table (a replay flips a slot
-- from days ago; an absence or a schedule change rewrites slots afterwards), alarms reference it
-- by id, and a patient's day is local to the time zone of their schedule, which a continuous
-- aggregate's constant time_bucket cannot follow. A dirty-day queue recomputes exactly the
-- touched days, within seconds, whatever their age, with the same SQL on both storage modes.

CREATE TABLE adherence_daily (
    dispenser_id text NOT NULL REFERENCES dispensers(id),
    local_date   date NOT NULL,       -- the patient's calendar day of the slots' due times
    patient_id   bigint NOT NULL,     -- the dispenser's patient, copied for set-based reports
    taken        integer NOT NULL,
    taken_late   integer NOT NULL,
    missed       integer NOT NULL,
    unknown      integer NOT NULL,
    suspended    integer NOT NULL,
    pending      integer NOT NULL,
    refreshed_at timestamptz NOT NULL,
    PRIMARY KEY (dispenser_id, local_date)
);
-- Covering: a month's report reads only this index (index-only scan once vacuumed).
CREATE INDEX adherence_daily_date_idx ON adherence_daily (local_date, patient_id)
    INCLUDE (taken, taken_late, missed, unknown, suspended, pending);
CREATE INDEX adherence_daily_patient_idx ON adherence_daily (patient_id, local_date);

-- Days whose figures must be recomputed. Marking is bookkeeping that must be atomic with the
-- slot change (like NOTIFY), not a clinical decision: the counting rule lives in
-- dosewatch/domain/adherence.py and the SQL that applies it in dosewatch/db/rollups.py.
CREATE TABLE adherence_dirty (
    dispenser_id text NOT NULL,
    local_date   date NOT NULL,
    marked_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (dispenser_id, local_date)
);

-- A slot's local day is its due time in the time zone of the schedule version that planned it
-- (dosewatch.domain.adherence.local_day).
CREATE FUNCTION adherence_mark_new() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO adherence_dirty (dispenser_id, local_date)
    SELECT DISTINCT n.dispenser_id, (n.due_at AT TIME ZONE sc.timezone)::date
    FROM new_slots n
    JOIN schedules sc ON sc.dispenser_id = n.dispenser_id AND sc.version = n.schedule_version
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END $$;

CREATE FUNCTION adherence_mark_old() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO adherence_dirty (dispenser_id, local_date)
    SELECT DISTINCT o.dispenser_id, (o.due_at AT TIME ZONE sc.timezone)::date
    FROM old_slots o
    JOIN schedules sc ON sc.dispenser_id = o.dispenser_id AND sc.version = o.schedule_version
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END $$;

-- An update marks both the old and the new day, but only for rows whose counted facts changed,
-- so the sweep's and the writer's bulk updates stay cheap.
CREATE FUNCTION adherence_mark_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO adherence_dirty (dispenser_id, local_date)
    SELECT DISTINCT x.dispenser_id, (x.due_at AT TIME ZONE sc.timezone)::date
    FROM (
        SELECT n.dispenser_id, n.due_at, n.schedule_version
        FROM new_slots n JOIN old_slots o ON o.id = n.id
        WHERE (n.state, n.due_at, n.dispenser_id, n.schedule_version)
              IS DISTINCT FROM (o.state, o.due_at, o.dispenser_id, o.schedule_version)
        UNION ALL
        SELECT o.dispenser_id, o.due_at, o.schedule_version
        FROM new_slots n JOIN old_slots o ON o.id = n.id
        WHERE (n.due_at, n.dispenser_id, n.schedule_version)
              IS DISTINCT FROM (o.due_at, o.dispenser_id, o.schedule_version)
    ) x
    JOIN schedules sc ON sc.dispenser_id = x.dispenser_id AND sc.version = x.schedule_version
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END $$;

CREATE TRIGGER adherence_slots_insert AFTER INSERT ON dose_slots
    REFERENCING NEW TABLE AS new_slots FOR EACH STATEMENT EXECUTE FUNCTION adherence_mark_new();
CREATE TRIGGER adherence_slots_delete AFTER DELETE ON dose_slots
    REFERENCING OLD TABLE AS old_slots FOR EACH STATEMENT EXECUTE FUNCTION adherence_mark_old();
CREATE TRIGGER adherence_slots_update AFTER UPDATE ON dose_slots
    REFERENCING OLD TABLE AS old_slots NEW TABLE AS new_slots
    FOR EACH STATEMENT EXECUTE FUNCTION adherence_mark_changed();

-- Slots that exist already (an upgraded database) are rolled up on the first refresh.
INSERT INTO adherence_dirty (dispenser_id, local_date)
SELECT DISTINCT s.dispenser_id, (s.due_at AT TIME ZONE sc.timezone)::date
FROM dose_slots s
JOIN schedules sc ON sc.dispenser_id = s.dispenser_id AND sc.version = s.schedule_version;

-- Report queries read a team's patients, and each patient's dispensers.
CREATE INDEX IF NOT EXISTS patients_team_idx ON patients (team_id);
CREATE INDEX IF NOT EXISTS dispensers_patient_idx ON dispensers (patient_id);

-- An absence recorded or ended (also afterwards, for days already past) changes how the slots
-- inside it count (dosewatch.domain.adherence.counted_state): mark its days, a day either side
-- of the UTC dates so any time zone's local days are covered.
CREATE FUNCTION adherence_mark_absence() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO adherence_dirty (dispenser_id, local_date)
    SELECT DISTINCT x.dispenser_id, g.day::date
    FROM (
        SELECT n.dispenser_id, n.starts_at, n.ends_at FROM new_absences n
        UNION ALL
        SELECT o.dispenser_id, o.starts_at, o.ends_at FROM old_absences o
    ) x,
    generate_series((x.starts_at AT TIME ZONE 'UTC')::date - 1,
                    (x.ends_at AT TIME ZONE 'UTC')::date + 1, interval '1 day') AS g(day)
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END $$;

CREATE FUNCTION adherence_mark_absence_new() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO adherence_dirty (dispenser_id, local_date)
    SELECT DISTINCT n.dispenser_id, g.day::date
    FROM new_absences n,
    generate_series((n.starts_at AT TIME ZONE 'UTC')::date - 1,
                    (n.ends_at AT TIME ZONE 'UTC')::date + 1, interval '1 day') AS g(day)
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END $$;

CREATE TRIGGER adherence_absences_insert AFTER INSERT ON absences
    REFERENCING NEW TABLE AS new_absences
    FOR EACH STATEMENT EXECUTE FUNCTION adherence_mark_absence_new();
CREATE TRIGGER adherence_absences_update AFTER UPDATE ON absences
    REFERENCING OLD TABLE AS old_absences NEW TABLE AS new_absences
    FOR EACH STATEMENT EXECUTE FUNCTION adherence_mark_absence();
CREATE INDEX IF NOT EXISTS absences_dispenser_span_idx ON absences (dispenser_id, starts_at, ends_at);
