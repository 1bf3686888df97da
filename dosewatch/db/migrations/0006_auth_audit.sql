-- Sign-in, API tokens, sign-in throttling and the audit log.
--
-- Roles: nurse and pharmacist belong to one team and see only it; manager and admin see every
-- team (their team_id, if set, is only their home team). Secrets are never stored in the clear:
-- passwords as argon2 hashes, session ids and API tokens as SHA-256 of a random value.

CREATE TABLE users (
    id            bigserial PRIMARY KEY,
    username      text NOT NULL CHECK (username ~ '^[a-z0-9][a-z0-9._@-]{1,63}$'),
    name          text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    role          text NOT NULL CHECK (role IN ('nurse', 'pharmacist', 'manager', 'admin')),
    team_id       bigint REFERENCES teams(id),
    language      text NOT NULL DEFAULT 'sv' CHECK (language IN ('sv', 'en')),
    active        boolean NOT NULL DEFAULT true,
    password_hash text NOT NULL,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    CHECK (role IN ('manager', 'admin') OR team_id IS NOT NULL)
);
CREATE UNIQUE INDEX users_username_idx ON users (username);

-- A browser session: the cookie holds a random id, the table its SHA-256. Expiry slides.
CREATE TABLE sessions (
    id_hash      text PRIMARY KEY,
    user_id      bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    csrf_token   text NOT NULL,
    created_at   timestamptz NOT NULL,
    last_seen_at timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL,
    client_ip    text,
    user_agent   text
);
CREATE INDEX sessions_user_idx ON sessions (user_id);
CREATE INDEX sessions_expiry_idx ON sessions (expires_at);

-- Machine clients (integrations, scripts, the simulator): a bearer token with a role and team.
CREATE TABLE api_tokens (
    id           bigserial PRIMARY KEY,
    name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    role         text NOT NULL CHECK (role IN ('nurse', 'pharmacist', 'manager', 'admin')),
    team_id      bigint REFERENCES teams(id),
    token_hash   text NOT NULL UNIQUE,
    created_at   timestamptz NOT NULL,
    last_used_at timestamptz,
    revoked_at   timestamptz,
    CHECK (role IN ('manager', 'admin') OR team_id IS NOT NULL)
);

-- Every sign-in attempt, for throttling (5 failures per username or address in 15 minutes).
CREATE TABLE login_attempts (
    id        bigserial PRIMARY KEY,
    at        timestamptz NOT NULL,
    username  text NOT NULL,
    client_ip text NOT NULL,
    success   boolean NOT NULL
);
CREATE INDEX login_attempts_user_idx ON login_attempts (username, at DESC);
CREATE INDEX login_attempts_ip_idx ON login_attempts (client_ip, at DESC);

-- Who did or opened what, when, from where. Append-only: no foreign keys (a row outlives what
-- it names), and UPDATE and DELETE raise, whoever runs them.
CREATE TABLE audit_log (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL,
    -- user, token: signed in; phone: a nurse answering an SMS or a call (Twilio webhooks);
    -- anonymous: a failed sign-in; system: the command line.
    actor_kind  text NOT NULL
                CHECK (actor_kind IN ('user', 'token', 'phone', 'anonymous', 'system')),
    actor_id    bigint,
    actor_name  text NOT NULL,
    actor_role  text,
    action      text NOT NULL,
    object_type text,
    object_id   text,
    detail      jsonb NOT NULL DEFAULT '{}',
    client_ip   text,
    user_agent  text
);
CREATE INDEX audit_log_at_idx ON audit_log (at DESC, id DESC);
CREATE INDEX audit_log_actor_idx ON audit_log (actor_name, at DESC);
CREATE INDEX audit_log_action_idx ON audit_log (action, at DESC);

CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();

-- The application's role owns the table (it ran this migration); take the rights back too.
-- (A superuser bypasses privileges, not the trigger.) TRUNCATE stays with the owner for an
-- explicit retention job and the test suite's clean-up between tests.
REVOKE UPDATE, DELETE ON audit_log FROM PUBLIC;
REVOKE UPDATE, DELETE ON audit_log FROM CURRENT_USER;

-- Alarm actions that arrive by SMS reply or keypress (signed Twilio webhooks, no session) are
-- audited from their history row; the web routes audit their own, with the caller's address.
CREATE FUNCTION alarm_history_audit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO audit_log (at, actor_kind, actor_name, action, object_type, object_id, detail)
    VALUES (NEW.at, 'phone', NEW.actor,
            CASE NEW.action WHEN 'acknowledged' THEN 'acknowledge' ELSE 'resolve' END,
            'alarm', NEW.alarm_id::text, jsonb_build_object('via', NEW.via) || NEW.detail);
    RETURN NULL;
END $$;
CREATE TRIGGER alarm_history_audit AFTER INSERT ON alarm_history
    FOR EACH ROW WHEN (NEW.action IN ('acknowledged', 'resolved') AND NEW.via IN ('sms', 'phone'))
    EXECUTE FUNCTION alarm_history_audit();
