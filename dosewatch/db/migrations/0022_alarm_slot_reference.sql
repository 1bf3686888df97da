-- alarms.slot_id: the last per-row foreign key of the 08:00 opening statement, checked and
-- locked once per statement instead (the rest went in 0019).
--
-- Why: profiled on 100,000 windows closing at once, the key's per-row check (a query and a row
-- lock per alarm) was the largest single item of the opening statement: about 5 µs of the
-- database's 52 µs per alarm; EXPLAIN of one 2,000-alarm batch gave it 33 ms of 110.
--
-- Unlike the rows of 0019, dose slots ARE deleted (a replanned schedule drops future slots that
-- nothing refers to yet), so here the lock matters and is kept, taken for all of a statement's
-- slots in one query. The guarantee is the foreign key's: no alarm names a slot that does not
-- exist, and a slot an alarm names cannot be deleted or renumbered.
--   * INSERT of alarms: one statement-level trigger locks the statement's slots FOR KEY SHARE
--     (the foreign key's own lock) and raises foreign_key_violation (23503) if one is missing.
--     The sweep holds those rows FOR UPDATE already (its claim), so for it the lock is free.
--     A slot being deleted by a transaction still open is waited for: once that commits, the
--     row is gone, the lock finds nothing and the insert is refused, as with the key.
--   * UPDATE of alarms.slot_id: the same, per row (nothing in the product does it).
--   * DELETE of dose_slots: refused by a statement-level check when an alarm names one of the
--     deleted slots. An alarm insert still open holds its slot FOR KEY SHARE, so the DELETE
--     waits for it and, in READ COMMITTED (every dosewatch transaction), its check then sees the
--     committed alarm and refuses. At a higher isolation level that check could not see it (the
--     foreign key uses a special cross-check snapshot that triggers cannot), so deleting slots
--     is refused outright in a REPEATABLE READ or SERIALIZABLE transaction.
--   * A slot's id never changes (refused), and TRUNCATE of dose_slots is refused unless alarms
--     is emptied in the same command (the test suite's clean-up), as 0019 does for its tables.

ALTER TABLE alarms DROP CONSTRAINT alarms_slot_id_fkey;

-- INSERT (transition table) or UPDATE of one row: lock the named slots, refuse a missing one.
CREATE FUNCTION alarm_slots_exist() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    wanted bigint[];
    locked bigint[];
    missing bigint;
BEGIN
    IF TG_LEVEL = 'ROW' THEN
        wanted := ARRAY[NEW.slot_id];
    ELSE
        SELECT array_agg(DISTINCT n.slot_id) INTO wanted FROM new_rows n
        WHERE n.slot_id IS NOT NULL;
    END IF;
    IF wanted IS NULL THEN
        RETURN NULL;
    END IF;
    SELECT array_agg(s.id) INTO locked FROM (
        SELECT id FROM dose_slots WHERE id = ANY(wanted) FOR KEY SHARE
    ) s;
    IF cardinality(wanted) IS DISTINCT FROM cardinality(locked) THEN
        SELECT w INTO missing FROM unnest(wanted) w
        WHERE locked IS NULL OR NOT (w = ANY(locked)) LIMIT 1;
        RAISE EXCEPTION 'insert or update on table "alarms" violates reference to "dose_slots"'
            USING ERRCODE = 'foreign_key_violation', TABLE = 'alarms',
                  DETAIL = format('Key (slot_id)=(%s) is not present in table "dose_slots".',
                                  missing);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER alarms_slot_exists AFTER INSERT ON alarms REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION alarm_slots_exist();
CREATE TRIGGER alarms_slot_exists_update AFTER UPDATE OF slot_id ON alarms FOR EACH ROW
    WHEN (NEW.slot_id IS NOT NULL AND NEW.slot_id IS DISTINCT FROM OLD.slot_id)
    EXECUTE FUNCTION alarm_slots_exist();

CREATE FUNCTION slots_with_alarms_stay() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    named bigint;
BEGIN
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'dose slots are deleted only in READ COMMITTED transactions'
            USING ERRCODE = 'feature_not_supported',
                  HINT = 'At a higher isolation level an alarm opened meanwhile is not seen.';
    END IF;
    SELECT a.slot_id INTO named FROM old_slots o JOIN alarms a ON a.slot_id = o.id LIMIT 1;
    IF named IS NOT NULL THEN
        RAISE EXCEPTION 'update or delete on table "dose_slots" violates reference from "alarms"'
            USING ERRCODE = 'foreign_key_violation', TABLE = 'dose_slots',
                  DETAIL = format('Key (id)=(%s) is still referenced from table "alarms".',
                                  named);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER dose_slots_named_stay AFTER DELETE ON dose_slots
    REFERENCING OLD TABLE AS old_slots
    FOR EACH STATEMENT EXECUTE FUNCTION slots_with_alarms_stay();
CREATE TRIGGER dose_slots_id_stays BEFORE UPDATE OF id ON dose_slots FOR EACH ROW
    WHEN (NEW.id IS DISTINCT FROM OLD.id) EXECUTE FUNCTION referenced_rows_stay();
CREATE TRIGGER dose_slots_truncate AFTER TRUNCATE ON dose_slots
    FOR EACH STATEMENT EXECUTE FUNCTION referenced_rows_stay('alarms');

-- 0019's statement checks, probing each distinct value once: a batch of 2,000 alarms names 100
-- teams, one policy and 300 nurses, and its history rows name each alarm twice.
CREATE OR REPLACE FUNCTION refs_exist() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    missing text;
BEGIN
    FOR i IN 0 .. TG_NARGS - 1 BY 2 LOOP
        EXECUTE format(
            'SELECT d.v::text FROM (SELECT DISTINCT n.%1$I AS v FROM new_rows n'
            ' WHERE n.%1$I IS NOT NULL) d'
            ' WHERE NOT EXISTS (SELECT 1 FROM %2$I p WHERE p.id = d.v) LIMIT 1',
            TG_ARGV[i], TG_ARGV[i + 1]) INTO missing;
        IF missing IS NOT NULL THEN
            RAISE EXCEPTION 'insert or update on table "%" violates reference to "%"',
                TG_TABLE_NAME, TG_ARGV[i + 1]
                USING ERRCODE = 'foreign_key_violation', TABLE = TG_TABLE_NAME,
                      DETAIL = format('Key (%s)=(%s) is not present in table "%s".',
                                      TG_ARGV[i], missing, TG_ARGV[i + 1]);
        END IF;
    END LOOP;
    RETURN NULL;
END $$;
