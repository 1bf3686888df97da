-- One quarantine record per distinct bad message, counting how often it arrived.
--
-- The gateway acknowledges a QoS 1 message only after its batch commits, so the broker
-- redelivers it after a reconnect or a restart, and a device may resend it too. Each receipt
-- used to become a row of its own, inflating the operators' list. Now the same bytes on the
-- same topic refused for the same reason are one row: ``received_at`` is the first receipt,
-- ``last_received_at`` the latest, ``repeats`` how many receipts in all (>= 1). The raw payload
-- is kept as before.
--
-- A recurrence days later counts on the same row too (it is the same message; the first and
-- last receipt show the span). A new row per time window would need a window in the key and
-- would split one problem into several list entries, for no clinical gain.
--
-- The key is a SHA-256 of (topic, reason, payload), computed by the database in a generated
-- column, so that no writer can store a digest that disagrees. Topic and reason are text, and
-- PostgreSQL text never holds a NUL byte, so NUL separators make the encoding unambiguous
-- (the payload, arbitrary bytes, comes last). ``convert_to`` is only STABLE because it reads
-- the database encoding; that is fixed for a database's lifetime (and a dump/restore recomputes
-- generated columns), so declaring the wrapper IMMUTABLE is sound.
CREATE FUNCTION quarantine_digest(topic text, reason text, payload bytea) RETURNS bytea
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN sha256(convert_to(topic, 'UTF8') || '\x00'::bytea || convert_to(reason, 'UTF8')
                  || '\x00'::bytea || payload);

ALTER TABLE quarantine
    ADD COLUMN digest bytea NOT NULL
        GENERATED ALWAYS AS (quarantine_digest(topic, reason, payload)) STORED,
    ADD COLUMN repeats integer NOT NULL DEFAULT 1 CHECK (repeats >= 1),
    ADD COLUMN last_received_at timestamptz;

UPDATE quarantine SET last_received_at = received_at;

-- Existing duplicates are merged, not tolerated: a unique index that let old duplicates stand
-- (a partial index, or one made unique only for new rows) would leave the list inflated for
-- ever and make "one row per message" untrue for anyone reading the table. Merging loses
-- nothing the new rows keep: the rows of a group have the same topic, reason and payload by
-- construction (and so the dispenser read from them); the oldest row (lowest id) stays, with the group's count and its first and last
-- receipt. Only the other rows' ids and the receipt times between first and last go.
WITH groups AS (
    SELECT digest, min(id) AS keep, count(*)::int AS n,
           min(received_at) AS first_at, max(received_at) AS last_at
    FROM quarantine GROUP BY digest HAVING count(*) > 1
), merged AS (
    UPDATE quarantine q
    SET repeats = g.n, received_at = g.first_at, last_received_at = g.last_at
    FROM groups g WHERE q.id = g.keep
)
DELETE FROM quarantine q USING groups g WHERE q.digest = g.digest AND q.id <> g.keep;

ALTER TABLE quarantine ALTER COLUMN last_received_at SET NOT NULL;
CREATE UNIQUE INDEX quarantine_digest_key ON quarantine (digest);
