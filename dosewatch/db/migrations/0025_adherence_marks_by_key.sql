-- The adherence rollup's marks (0012) look up each changed slot's schedule by its key, and an
-- update's marks take one pass.
--
-- Why: the slot triggers joined the statement's slots to `schedules`, and with a whole fleet's
-- schedules the planner hashed the entire table for every statement. Closing one batch of
-- 2,000 windows among 100,000 dispensers: 40 of the trigger's 55 ms went to a sequential scan
-- of 100,000 schedules, about 20 µs an alarm at 08:00 (and the same on every batch the gateway
-- stores). The transition tables carry no statistics, and the planner's guess of how many rows
-- survive the IS DISTINCT FROM filter (ten times too many) made the hash look cheaper than
-- 2,000 primary-key lookups (the bench had no schedule rows until 2026-12-07, so none of this
-- showed in it). A lateral subquery the planner may not flatten (OFFSET 0) makes it a lookup
-- per slot whatever the guess.
--
-- Same rule as before (dosewatch.domain.adherence.local_day): a slot's local day is its due
-- time in the time zone of the schedule version that planned it; a slot without its schedule
-- row marks nothing, as before.

CREATE OR REPLACE FUNCTION adherence_mark_new() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO adherence_dirty (dispenser_id, local_date)
    SELECT DISTINCT n.dispenser_id, (n.due_at AT TIME ZONE sc.timezone)::date
    FROM new_slots n
    JOIN LATERAL (SELECT sc.timezone FROM schedules sc
                  WHERE sc.dispenser_id = n.dispenser_id AND sc.version = n.schedule_version
                  OFFSET 0) sc ON true
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION adherence_mark_old() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO adherence_dirty (dispenser_id, local_date)
    SELECT DISTINCT o.dispenser_id, (o.due_at AT TIME ZONE sc.timezone)::date
    FROM old_slots o
    JOIN LATERAL (SELECT sc.timezone FROM schedules sc
                  WHERE sc.dispenser_id = o.dispenser_id AND sc.version = o.schedule_version
                  OFFSET 0) sc ON true
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END $$;

-- An update marks both the old and the new day, but only for rows whose counted facts changed.
-- One pass over the joined old and new rows (a VALUES pair per row) instead of 0012's two joins
-- in a UNION ALL: the statement trigger of a 2,000-slot close went from about 33 to 14 ms.
CREATE OR REPLACE FUNCTION adherence_mark_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO adherence_dirty (dispenser_id, local_date)
    SELECT DISTINCT v.dispenser_id, (v.due_at AT TIME ZONE sc.timezone)::date
    FROM new_slots n
    JOIN old_slots o ON o.id = n.id
    CROSS JOIN LATERAL (VALUES
        -- the new day, when anything counted changed
        (n.dispenser_id, n.due_at, n.schedule_version,
         (n.state, n.due_at, n.dispenser_id, n.schedule_version)
         IS DISTINCT FROM (o.state, o.due_at, o.dispenser_id, o.schedule_version)),
        -- the old day too, when the slot moved to another day or dispenser
        (o.dispenser_id, o.due_at, o.schedule_version,
         (n.due_at, n.dispenser_id, n.schedule_version)
         IS DISTINCT FROM (o.due_at, o.dispenser_id, o.schedule_version))
    ) AS v (dispenser_id, due_at, schedule_version, changed)
    JOIN LATERAL (SELECT sc.timezone FROM schedules sc
                  WHERE sc.dispenser_id = v.dispenser_id AND sc.version = v.schedule_version
                  OFFSET 0) sc ON true
    WHERE v.changed
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END $$;
