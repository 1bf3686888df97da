-- The references of alarms, their history and their outbox rows, checked once per statement
-- instead of once per row.
--
-- Why: at 08:00 one statement opens 2,000 alarms with their history and first notifications,
-- and a declarative foreign key runs a query per row that also locks the referenced row (FOR
-- KEY SHARE) so a concurrent DELETE has to wait. EXPLAIN ANALYZE of one such batch: those
-- per-row checks were 85 of its 157 ms. Their lock is what guards against a concurrent delete;
-- the rows referenced here are never deleted (nothing in the product deletes an alarm, a
-- dispenser, a patient, a team or a nurse: clinical records are kept, people are deactivated),
-- so the lock guards against nothing once deleting them is refused outright.
--
-- The guarantee stays the same as the foreign keys': no alarm, history row or outbox row can
-- name a row that does not exist, on any path that writes them (not only the sweep).
--   * On INSERT, one statement-level trigger per table checks every new row against its
--     referenced tables with an anti-join over the transition table, and raises
--     foreign_key_violation (23503, as the foreign key did) naming the first offender. It runs
--     at the end of the statement, so rows inserted by the same statement (an alarm and its
--     history in one WITH) are seen, as they were by the foreign key.
--   * On UPDATE of a referencing column, a row trigger checks the new value (rare; the WHEN
--     clause keeps the escalation sweep's updates free of it).
--   * The referenced rows cannot go away: DELETE of alarms, dispensers, patients, teams and
--     nurses, and any change of their id, is refused (policy_versions refuse both since 0011).
--     TRUNCATE bypasses DELETE triggers, so after a TRUNCATE the same check runs the other way:
--     it is refused unless the referencing tables were emptied too (the test suite truncates
--     everything at once; a lone TRUNCATE of dispensers is refused as the foreign key refused it).
--   * A row not yet committed by another transaction is not visible to the check, so a
--     reference to it is refused where the foreign key would have waited; every writer here
--     references rows committed before (or written by its own transaction).
--
-- Kept as declarative foreign keys: alarms.slot_id (dose slots are deleted when a schedule is
-- replanned; the key's lock is what stops a slot with an alarm from going).

ALTER TABLE alarms DROP CONSTRAINT alarms_dispenser_id_fkey,
                   DROP CONSTRAINT alarms_patient_id_fkey,
                   DROP CONSTRAINT alarms_team_id_fkey,
                   DROP CONSTRAINT alarms_policy_id_fkey,
                   DROP CONSTRAINT alarms_acknowledged_nurse_id_fkey;
ALTER TABLE alarm_history DROP CONSTRAINT alarm_history_alarm_id_fkey;
ALTER TABLE notifications DROP CONSTRAINT notifications_alarm_id_fkey,
                          DROP CONSTRAINT notifications_nurse_id_fkey;

-- TG_ARGV: pairs of (column, referenced table); the referenced key is its "id". One anti-join
-- per pair over the statement's new rows (a nested loop over the primary key, or a hash of a
-- small table such as teams): no per-row query, no row lock.
CREATE FUNCTION refs_exist() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    missing text;
BEGIN
    FOR i IN 0 .. TG_NARGS - 1 BY 2 LOOP
        EXECUTE format(
            'SELECT n.%1$I::text FROM new_rows n WHERE n.%1$I IS NOT NULL'
            ' AND NOT EXISTS (SELECT 1 FROM %2$I p WHERE p.id = n.%1$I) LIMIT 1',
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

-- The same for one updated row (TG_ARGV as above).
CREATE FUNCTION ref_exists_row() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    found_it boolean;
    value text;
BEGIN
    FOR i IN 0 .. TG_NARGS - 1 BY 2 LOOP
        EXECUTE format('SELECT ($1).%I::text', TG_ARGV[i]) USING NEW INTO value;
        CONTINUE WHEN value IS NULL;
        EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I p WHERE p.id = ($1).%I)',
                       TG_ARGV[i + 1], TG_ARGV[i]) USING NEW INTO found_it;
        IF NOT found_it THEN
            RAISE EXCEPTION 'insert or update on table "%" violates reference to "%"',
                TG_TABLE_NAME, TG_ARGV[i + 1]
                USING ERRCODE = 'foreign_key_violation', TABLE = TG_TABLE_NAME,
                      DETAIL = format('Key (%s)=(%s) is not present in table "%s".',
                                      TG_ARGV[i], value, TG_ARGV[i + 1]);
        END IF;
    END LOOP;
    RETURN NULL;
END $$;

CREATE TRIGGER alarms_refs AFTER INSERT ON alarms REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION refs_exist(
        'dispenser_id', 'dispensers', 'patient_id', 'patients', 'team_id', 'teams',
        'policy_id', 'policy_versions', 'acknowledged_nurse_id', 'nurses');
CREATE TRIGGER alarms_refs_update
    AFTER UPDATE OF dispenser_id, patient_id, team_id, policy_id, acknowledged_nurse_id
    ON alarms FOR EACH ROW
    WHEN ((NEW.dispenser_id, NEW.patient_id, NEW.team_id, NEW.policy_id,
           NEW.acknowledged_nurse_id)
          IS DISTINCT FROM (OLD.dispenser_id, OLD.patient_id, OLD.team_id, OLD.policy_id,
                            OLD.acknowledged_nurse_id))
    EXECUTE FUNCTION ref_exists_row(
        'dispenser_id', 'dispensers', 'patient_id', 'patients', 'team_id', 'teams',
        'policy_id', 'policy_versions', 'acknowledged_nurse_id', 'nurses');

CREATE TRIGGER alarm_history_refs AFTER INSERT ON alarm_history REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION refs_exist('alarm_id', 'alarms');
CREATE TRIGGER alarm_history_refs_update AFTER UPDATE OF alarm_id ON alarm_history FOR EACH ROW
    WHEN (NEW.alarm_id IS DISTINCT FROM OLD.alarm_id)
    EXECUTE FUNCTION ref_exists_row('alarm_id', 'alarms');

CREATE TRIGGER notifications_refs AFTER INSERT ON notifications REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION refs_exist('alarm_id', 'alarms', 'nurse_id', 'nurses');
CREATE TRIGGER notifications_refs_update AFTER UPDATE OF alarm_id, nurse_id ON notifications
    FOR EACH ROW
    WHEN ((NEW.alarm_id, NEW.nurse_id) IS DISTINCT FROM (OLD.alarm_id, OLD.nurse_id))
    EXECUTE FUNCTION ref_exists_row('alarm_id', 'alarms', 'nurse_id', 'nurses');

-- The referenced rows stay. TG_ARGV of the TRUNCATE check: the tables that must be empty after
-- this one was truncated.
CREATE FUNCTION referenced_rows_stay() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    nonempty boolean;
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        FOR i IN 0 .. TG_NARGS - 1 LOOP
            EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I)', TG_ARGV[i]) INTO nonempty;
            IF nonempty THEN
                RAISE EXCEPTION 'cannot truncate "%": "%" refers to it', TG_TABLE_NAME, TG_ARGV[i]
                    USING ERRCODE = 'foreign_key_violation',
                          HINT = format('Truncate "%s" in the same command.', TG_ARGV[i]);
            END IF;
        END LOOP;
        RETURN NULL;
    END IF;
    RAISE EXCEPTION '% on "%" refused: alarms, their history and notifications refer to its rows',
        TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'foreign_key_violation',
              HINT = 'Clinical records are kept; deactivate instead of deleting.';
END $$;

CREATE TRIGGER alarms_stay BEFORE DELETE ON alarms
    FOR EACH STATEMENT EXECUTE FUNCTION referenced_rows_stay();
CREATE TRIGGER alarms_id_stays BEFORE UPDATE OF id ON alarms FOR EACH ROW
    WHEN (NEW.id IS DISTINCT FROM OLD.id) EXECUTE FUNCTION referenced_rows_stay();
CREATE TRIGGER alarms_truncate AFTER TRUNCATE ON alarms
    FOR EACH STATEMENT EXECUTE FUNCTION referenced_rows_stay('alarm_history', 'notifications');

CREATE TRIGGER dispensers_stay BEFORE DELETE ON dispensers
    FOR EACH STATEMENT EXECUTE FUNCTION referenced_rows_stay();
CREATE TRIGGER dispensers_id_stays BEFORE UPDATE OF id ON dispensers FOR EACH ROW
    WHEN (NEW.id IS DISTINCT FROM OLD.id) EXECUTE FUNCTION referenced_rows_stay();
CREATE TRIGGER dispensers_truncate AFTER TRUNCATE ON dispensers
    FOR EACH STATEMENT EXECUTE FUNCTION referenced_rows_stay('alarms');

CREATE TRIGGER patients_stay BEFORE DELETE ON patients
    FOR EACH STATEMENT EXECUTE FUNCTION referenced_rows_stay();
CREATE TRIGGER patients_id_stays BEFORE UPDATE OF id ON patients FOR EACH ROW
    WHEN (NEW.id IS DISTINCT FROM OLD.id) EXECUTE FUNCTION referenced_rows_stay();
CREATE TRIGGER patients_truncate AFTER TRUNCATE ON patients
    FOR EACH STATEMENT EXECUTE FUNCTION referenced_rows_stay('alarms');

CREATE TRIGGER teams_stay BEFORE DELETE ON teams
    FOR EACH STATEMENT EXECUTE FUNCTION referenced_rows_stay();
CREATE TRIGGER teams_id_stays BEFORE UPDATE OF id ON teams FOR EACH ROW
    WHEN (NEW.id IS DISTINCT FROM OLD.id) EXECUTE FUNCTION referenced_rows_stay();
CREATE TRIGGER teams_truncate AFTER TRUNCATE ON teams
    FOR EACH STATEMENT EXECUTE FUNCTION referenced_rows_stay('alarms');

CREATE TRIGGER nurses_stay BEFORE DELETE ON nurses
    FOR EACH STATEMENT EXECUTE FUNCTION referenced_rows_stay();
CREATE TRIGGER nurses_id_stays BEFORE UPDATE OF id ON nurses FOR EACH ROW
    WHEN (NEW.id IS DISTINCT FROM OLD.id) EXECUTE FUNCTION referenced_rows_stay();
CREATE TRIGGER nurses_truncate AFTER TRUNCATE ON nurses
    FOR EACH STATEMENT EXECUTE FUNCTION referenced_rows_stay('alarms', 'notifications');

CREATE TRIGGER policy_versions_truncate AFTER TRUNCATE ON policy_versions
    FOR EACH STATEMENT EXECUTE FUNCTION referenced_rows_stay('alarms');
