-- The web console: live push of alarm changes, and districts for the refill worklist.
-- Refills recorded in the console go to dispenser_refills (migration 0005), with an event_id
-- starting 'console-' and the signed-in user as staff_id.

-- Every new alarm, and every change a console shows (state, priority, escalation position), is
-- announced on channel 'dosewatch_alarms' when its transaction commits. Each web process holds
-- one LISTEN connection and fans the notices out to its open consoles (dashboards/stream.py).
-- The payload is small (well under NOTIFY's 8000-byte limit): the console fetches the rest.
-- 'at' is the database's wall clock when the row was written, in epoch milliseconds, so the
-- browser can measure creation-to-screen latency.
CREATE FUNCTION alarms_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('dosewatch_alarms', json_build_object(
        'id', NEW.id,
        'team_id', NEW.team_id,
        'state', NEW.state,
        'priority', NEW.priority,
        'op', lower(TG_OP),
        'at', floor(extract(epoch FROM clock_timestamp()) * 1000)
    )::text);
    RETURN NULL;
END $$;

CREATE TRIGGER alarms_notify_insert AFTER INSERT ON alarms
    FOR EACH ROW EXECUTE FUNCTION alarms_notify();
CREATE TRIGGER alarms_notify_update AFTER UPDATE ON alarms
    FOR EACH ROW WHEN (
        OLD.state IS DISTINCT FROM NEW.state
        OR OLD.priority IS DISTINCT FROM NEW.priority
        OR OLD.step_index IS DISTINCT FROM NEW.step_index
        OR OLD.step_round IS DISTINCT FROM NEW.step_round
        OR OLD.epoch IS DISTINCT FROM NEW.epoch
    ) EXECUTE FUNCTION alarms_notify();

-- A district within a team (a round the pharmacist drives), for filtering the worklist.
ALTER TABLE patients ADD COLUMN district text CHECK (length(district) <= 100);
CREATE INDEX patients_team_district_idx ON patients (team_id, district);
