-- Training mode: a team can be a training team. Whether an alarm, a patient or a dispenser is a
-- training one is derived from this one flag (the alarm's team, the patient's team), never
-- copied: the flag can change only while the team has no patients and no alarms, and a patient
-- with a record cannot cross between a training and a real team (dosewatch/domain/training.py),
-- so a derived answer can never change for anything that already happened.
ALTER TABLE teams ADD COLUMN training boolean NOT NULL DEFAULT false;
ALTER TABLE teams ADD COLUMN training_changed_at timestamptz;
ALTER TABLE teams ADD COLUMN training_changed_by text;

-- Grafana reads these views: training teams' figures are left out, as in the reports.
CREATE OR REPLACE VIEW reporting.teams AS
SELECT id AS team_id, name AS team_name FROM teams WHERE NOT training;

CREATE OR REPLACE VIEW reporting.adherence_patient_daily AS
SELECT x.*,
       (x.expected > 0 AND x.pending = 0) AS monitored,
       (x.expected > 0 AND x.pending = 0 AND x.missed + x.unknown = 0) AS correct
FROM (
    SELECT a.patient_id, a.local_date, p.team_id, p.district,
           sum(a.taken)::int AS taken, sum(a.taken_late)::int AS taken_late,
           sum(a.missed)::int AS missed, sum(a.unknown)::int AS unknown,
           sum(a.suspended)::int AS suspended, sum(a.pending)::int AS pending,
           sum(a.taken + a.taken_late + a.missed + a.unknown)::int AS expected
    FROM adherence_daily a JOIN patients p ON p.id = a.patient_id
    WHERE NOT EXISTS (SELECT 1 FROM teams tt WHERE tt.id = p.team_id AND tt.training)
    GROUP BY a.patient_id, a.local_date, p.team_id, p.district
) x;

CREATE OR REPLACE VIEW reporting.alarm_facts AS
SELECT a.id AS alarm_id, a.kind, a.priority, a.opened_at,
       coalesce(a.team_id, p.team_id) AS team_id, coalesce(t.name, '(no team)') AS team_name,
       f.first_ack_at, a.resolved_at, a.outcome,
       extract(epoch FROM f.first_ack_at - a.opened_at)::float8 AS ack_s,
       extract(epoch FROM a.resolved_at - a.opened_at)::float8 AS resolve_s,
       EXISTS (SELECT 1 FROM notifications n JOIN policy_versions pv ON pv.id = a.policy_id
               WHERE n.alarm_id = a.id AND n.purpose = 'alarm'
               AND n.step_index = jsonb_array_length(pv.body -> 'steps') - 1
               AND n.step_round = coalesce((pv.body ->> 'repeats')::int, 0))
           AS reached_last_step
FROM alarms a
JOIN patients p ON p.id = a.patient_id
LEFT JOIN teams t ON t.id = coalesce(a.team_id, p.team_id)
CROSS JOIN LATERAL (
    SELECT coalesce((SELECT min(h.at) FROM alarm_history h
                     WHERE h.alarm_id = a.id AND h.action = 'acknowledged'),
                    a.acknowledged_at) AS first_ack_at
) f
WHERE NOT coalesce(t.training, false);
