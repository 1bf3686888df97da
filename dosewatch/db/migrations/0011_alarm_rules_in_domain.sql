-- Alarm decisions move out of the database into dosewatch.domain.opening, and alarms reference
-- immutable policy versions instead of carrying a copy of the policy.
--
-- Before: the BEFORE INSERT trigger alarms_attach_policy chose each alarm's team, copied its
-- team's policy JSON onto the row, set its first step due and drew its SMS reply code — so one
-- path (the sweep) decided those in Python and another (a device's dose_not_taken) in this
-- trigger. Now every path asks the domain and writes what it decided, first step included; the
-- database keeps what must hold atomically: uniqueness (one alarm per slot, one unresolved per
-- dispenser and kind), references, and the append-only policy versions.

-- Every policy an alarm has followed, stored once per distinct content. Immutable: an alarm's
-- escalation must never change because somebody edited a row.
CREATE TABLE policy_versions (
    id         bigserial PRIMARY KEY,
    body       jsonb NOT NULL,
    -- jsonb's text form is canonical (keys sorted, duplicates gone): equal policies, one digest.
    digest     text GENERATED ALWAYS AS (md5(body::text)) STORED UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION policy_versions_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'policy_versions is append-only (% refused)', TG_OP;
END $$;
CREATE TRIGGER policy_versions_immutable BEFORE UPDATE OR DELETE ON policy_versions
    FOR EACH STATEMENT EXECUTE FUNCTION policy_versions_immutable();

ALTER TABLE alarms ADD COLUMN policy_id bigint REFERENCES policy_versions(id);

-- Alarms opened before this migration keep exactly the policy they copied. Those that copied
-- none (a team without a policy of its own) keep policy_id NULL, which means the default.
INSERT INTO policy_versions (body) SELECT DISTINCT policy FROM alarms WHERE policy IS NOT NULL
    ON CONFLICT (digest) DO NOTHING;
UPDATE alarms a SET policy_id = pv.id FROM policy_versions pv
    WHERE a.policy IS NOT NULL AND pv.digest = md5(a.policy::text);

DROP TRIGGER alarms_attach_policy ON alarms;
DROP FUNCTION alarms_attach_policy();
ALTER TABLE alarms DROP COLUMN policy;

-- New alarms' console notice, one statement's worth at a time: the same payload per alarm as
-- the row trigger of 0007 sent, without a PL/pgSQL call per row (the 08:00 rush inserts
-- thousands of alarms in one statement).
DROP TRIGGER alarms_notify_insert ON alarms;
CREATE FUNCTION alarms_notify_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('dosewatch_alarms', json_build_object(
        'id', n.id,
        'team_id', n.team_id,
        'state', n.state,
        'priority', n.priority,
        'op', 'insert',
        'at', floor(extract(epoch FROM clock_timestamp()) * 1000)
    )::text) FROM inserted n;
    RETURN NULL;
END $$;
CREATE TRIGGER alarms_notify_insert AFTER INSERT ON alarms
    REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION alarms_notify_inserted();
