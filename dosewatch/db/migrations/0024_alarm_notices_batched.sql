-- New alarms are announced a hundred at a time: one notice per team and hundred alarms of a
-- statement on 'dosewatch_alarms', instead of one per alarm (0011).
--
-- Why: at 08:00 one statement opens 2,000 alarms, and a notice per alarm costs the opening
-- transaction a queue entry each, every listening web process a message to read and parse each
-- (100,000 in a few seconds), and the burst bench's own listener as much CPU as a fifth of the
-- alarm process. A notice holds at most 8,000 bytes: a hundred alarms as {id, state, priority}
-- take under 6,500 (ids of 19 digits and the longest state included).
--
-- The format is read in one place, dosewatch.db.notices.alarm_notices, which turns either kind
-- of notice back into one message per alarm ({id, team_id, state, priority, op, at}), so the
-- console's Server-Sent Events are unchanged. Changes to an alarm (the row trigger of 0007)
-- still send one notice each: they come one at a time.

CREATE OR REPLACE FUNCTION alarms_notify_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('dosewatch_alarms', json_build_object(
        'op', 'insert',
        'team_id', c.team_id,
        'at', floor(extract(epoch FROM clock_timestamp()) * 1000),
        'alarms', c.alarms
    )::text)
    FROM (
        SELECT n.team_id,
               json_agg(json_build_object('id', n.id, 'state', n.state, 'priority', n.priority)
                        ORDER BY n.id) AS alarms
        FROM (SELECT i.*, (row_number() OVER (PARTITION BY i.team_id ORDER BY i.id) - 1) / 100
                          AS chunk
              FROM inserted i) n
        GROUP BY n.team_id, n.chunk
    ) c;
    RETURN NULL;
END $$;
