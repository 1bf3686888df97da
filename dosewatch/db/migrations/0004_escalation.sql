-- Teams, nurses, rosters and escalation policies; the escalation timer on each alarm; the
-- notification outbox; and a heartbeat per periodic job for the self-watch.

CREATE TABLE teams (
    id         bigserial PRIMARY KEY,
    name       text NOT NULL UNIQUE,
    created_at timestamptz NOT NULL
);

CREATE TABLE nurses (
    id         bigserial PRIMARY KEY,
    team_id    bigint NOT NULL REFERENCES teams(id),
    name       text NOT NULL,
    phone      text NOT NULL,            -- E.164, e.g. +46701234567
    language   text NOT NULL DEFAULT 'sv' CHECK (language IN ('sv', 'en')),
    active     boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL
);
CREATE INDEX nurses_team_idx ON nurses (team_id);
CREATE INDEX nurses_phone_idx ON nurses (phone);

-- A shift is two instants, not a date and two wall times: a night shift that crosses midnight,
-- or a daylight-saving night, is then just a longer or shorter interval.
CREATE TABLE shifts (
    id        bigserial PRIMARY KEY,
    team_id   bigint NOT NULL REFERENCES teams(id),
    nurse_id  bigint NOT NULL REFERENCES nurses(id),
    starts_at timestamptz NOT NULL,
    ends_at   timestamptz NOT NULL,
    role      text NOT NULL CHECK (role IN ('primary', 'backup', 'lead')),
    CHECK (ends_at > starts_at)
);
CREATE INDEX shifts_team_time_idx ON shifts (team_id, starts_at, ends_at);

-- One current policy per team, versioned; every version is kept for the audit trail.
CREATE TABLE escalation_policies (
    team_id    bigint NOT NULL REFERENCES teams(id),
    version    integer NOT NULL,
    policy     jsonb NOT NULL,
    created_at timestamptz NOT NULL,
    created_by text NOT NULL,
    PRIMARY KEY (team_id, version)
);

ALTER TABLE patients ADD COLUMN team_id bigint REFERENCES teams(id);
-- The optional first step reminds the patient or a relative by SMS, only with recorded consent.
ALTER TABLE patients ADD COLUMN contact_phone text;
ALTER TABLE patients ADD COLUMN contact_sms_consent_at timestamptz;

-- The escalation's durable state lives on the alarm: the policy copied when it opened, where it
-- stands, and when to act next. A sweep claims rows whose next_step_at has come.
ALTER TABLE alarms ADD COLUMN team_id bigint REFERENCES teams(id);
ALTER TABLE alarms ADD COLUMN policy jsonb;
ALTER TABLE alarms ADD COLUMN step_index integer NOT NULL DEFAULT 0;
ALTER TABLE alarms ADD COLUMN step_round integer NOT NULL DEFAULT 0;
-- Bumped when an acknowledged alarm is reopened: its steps run again, with new outbox keys.
ALTER TABLE alarms ADD COLUMN epoch integer NOT NULL DEFAULT 0;
ALTER TABLE alarms ADD COLUMN next_step_at timestamptz;
ALTER TABLE alarms ADD COLUMN remind_at timestamptz;
ALTER TABLE alarms ADD COLUMN ack_code text;  -- reply "OK <code>" by SMS to acknowledge
ALTER TABLE alarms ADD COLUMN acknowledged_nurse_id bigint REFERENCES nurses(id);
CREATE INDEX alarms_next_step_idx ON alarms (next_step_at) WHERE next_step_at IS NOT NULL;
CREATE INDEX alarms_remind_idx ON alarms (remind_at) WHERE remind_at IS NOT NULL;
-- Device alarms (no slot): at most one unresolved alarm per dispenser and kind.
CREATE UNIQUE INDEX alarms_one_open_per_device_kind ON alarms (dispenser_id, kind)
    WHERE slot_id IS NULL AND resolved_at IS NULL;

-- Every alarm, whichever code path opens it, gets its patient's team and that team's current
-- policy copied in the same statement, its first step due at once, and an SMS reply code. A team
-- without a policy of its own leaves policy NULL; the first escalation step then copies the
-- application's default (dosewatch.domain.escalation.DEFAULT_POLICY) onto the alarm.
CREATE FUNCTION alarms_attach_policy() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.team_id IS NULL THEN
        SELECT team_id INTO NEW.team_id FROM patients WHERE id = NEW.patient_id;
    END IF;
    IF NEW.policy IS NULL AND NEW.team_id IS NOT NULL THEN
        SELECT policy INTO NEW.policy FROM escalation_policies
        WHERE team_id = NEW.team_id ORDER BY version DESC LIMIT 1;
    END IF;
    IF NEW.next_step_at IS NULL AND NEW.resolved_at IS NULL THEN
        NEW.next_step_at := NEW.opened_at;
    END IF;
    IF NEW.ack_code IS NULL THEN
        NEW.ack_code := lpad((floor(random() * 10000))::int::text, 4, '0');
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER alarms_attach_policy BEFORE INSERT ON alarms
    FOR EACH ROW EXECUTE FUNCTION alarms_attach_policy();

-- The outbox: written in the same transaction as the escalation step that decides to notify.
-- idempotency_key makes a step executed twice insert nothing the second time.
CREATE TABLE notifications (
    id              bigserial PRIMARY KEY,
    alarm_id        bigint NOT NULL REFERENCES alarms(id),
    idempotency_key text NOT NULL UNIQUE,
    purpose         text NOT NULL CHECK (purpose IN ('alarm', 'all_clear', 'reminder',
                                                     'patient_reminder')),
    channel         text NOT NULL CHECK (channel IN ('console', 'sms', 'voice')),
    nurse_id        bigint REFERENCES nurses(id),
    to_number       text,
    language        text NOT NULL DEFAULT 'sv',
    step_index      integer,
    step_round      integer,
    -- pending → sending → sent → delivered | failed | undelivered; voice: sent → answered →
    -- acknowledged (a key was pressed) | no_keypress; cancelled when the alarm stopped first;
    -- skipped when there is no provider (console-only mode).
    status          text NOT NULL DEFAULT 'pending',
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz,
    claimed_until   timestamptz,
    provider_sid    text,
    bundle_key      text,      -- SMS bundled into one message share it
    last_error      text,
    created_at      timestamptz NOT NULL,
    sent_at         timestamptz,
    updated_at      timestamptz NOT NULL
);
CREATE INDEX notifications_due_idx ON notifications (next_attempt_at)
    WHERE status = 'pending';
CREATE INDEX notifications_alarm_idx ON notifications (alarm_id, id);
CREATE INDEX notifications_sid_idx ON notifications (provider_sid)
    WHERE provider_sid IS NOT NULL;

-- The self-watch: each periodic job stamps its last successful run here.
CREATE TABLE job_runs (
    job        text PRIMARY KEY,
    last_ok_at timestamptz NOT NULL,
    runs       bigint NOT NULL DEFAULT 0
);
