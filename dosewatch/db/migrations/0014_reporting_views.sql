-- Reporting views for Grafana (deploy/grafana/): the managers' figures as SQL, no names.
--
-- The counting rules are the domain's (dosewatch/domain/adherence.py, alarm_figures.py); these
-- views only add up the rollup and the alarm facts the same way dosewatch/db/reports.py and
-- reports_alarms.py do, and tests/integration/test_grafana.py runs every dashboard panel against
-- them and holds the results to the report API's figures for the same month.
--
-- Grafana has no team scoping and no audit trail, so it gets figures, not people: the views
-- carry patient ids at most, never a name, phone or address, and the role Grafana signs in with
-- (dosewatch_grafana, below) may read this schema only. A view runs with its owner's rights, so
-- that role needs no right on the tables underneath.

CREATE SCHEMA reporting;

CREATE VIEW reporting.teams AS
SELECT id AS team_id, name AS team_name FROM teams;

-- One row per patient and local day: the patient's dispensers summed (a correct day needs every
-- dose of both), with whether the day is monitored and correct (DayCounts.monitored/correct).
CREATE VIEW reporting.adherence_patient_daily AS
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
    GROUP BY a.patient_id, a.local_date, p.team_id, p.district
) x;

-- Per local day, team and district: the sums a percentage is made of. A percentage over any
-- range is sum(numerator) / sum(expected) over these rows, never an average of daily ones.
CREATE VIEW reporting.adherence_team_daily AS
SELECT d.local_date, d.team_id, coalesce(t.name, '(no team)') AS team_name, d.district,
       count(*)::int AS patients_with_slots,
       sum(d.expected)::int AS expected, sum(d.taken)::int AS taken,
       sum(d.taken_late)::int AS taken_late, sum(d.missed)::int AS missed,
       sum(d.unknown)::int AS unknown, sum(d.suspended)::int AS suspended,
       sum(d.pending)::int AS pending,
       count(*) FILTER (WHERE d.monitored)::int AS monitored_days,
       count(*) FILTER (WHERE d.correct)::int AS correct_dosing_days
FROM reporting.adherence_patient_daily d LEFT JOIN teams t ON t.id = d.team_id
GROUP BY d.local_date, d.team_id, t.name, d.district;

-- One row per alarm: the facts alarm handling is measured by (AlarmFacts).
CREATE VIEW reporting.alarm_facts AS
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
) f;

-- SMS and calls that did not get through, by the alarm's opening (as the report counts them).
CREATE VIEW reporting.delivery_failures AS
SELECT n.id AS notification_id, n.channel, n.status, f.opened_at, f.team_id, f.team_name
FROM notifications n JOIN reporting.alarm_facts f ON f.alarm_id = n.alarm_id
WHERE n.status IN ('failed', 'undelivered', 'no_keypress');

-- The role Grafana's own login is made a member of (deploy/grafana/reader.sql). Roles belong to
-- the whole server: create it once, and only where this migration may create roles at all.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'dosewatch_grafana') THEN
        IF (SELECT rolcreaterole OR rolsuper FROM pg_roles WHERE rolname = current_user) THEN
            CREATE ROLE dosewatch_grafana NOLOGIN;
        ELSE
            RAISE NOTICE 'cannot create role dosewatch_grafana: ask a DBA (deploy/README.md)';
        END IF;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;  -- another database of this server created it at the same moment
END $$;

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'dosewatch_grafana') THEN
        GRANT USAGE ON SCHEMA reporting TO dosewatch_grafana;
        GRANT SELECT ON ALL TABLES IN SCHEMA reporting TO dosewatch_grafana;
    END IF;
END $$;
