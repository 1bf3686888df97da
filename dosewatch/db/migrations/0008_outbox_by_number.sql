-- The dispatcher asks, per nurse's number, when the last alarm SMS went out (bundling) and
-- which provider ids are already recorded (reconciling a send after a crash).
CREATE INDEX notifications_number_sent_idx ON notifications (to_number, sent_at)
    WHERE sent_at IS NOT NULL;
