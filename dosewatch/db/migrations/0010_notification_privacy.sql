-- What SMS and calls say about a patient, chosen per team (dosewatch/domain/disclosure.py).
-- 'minimal', the default for every team old and new: initials, a short reference and the
-- district. 'full' adds the full name and the address; a team turns it on explicitly, and the
-- change is audited (audit_log: who, when, from where). The two columns below only show the
-- last change on the team's settings page; the audit log keeps every one.
ALTER TABLE teams ADD COLUMN notification_detail text NOT NULL DEFAULT 'minimal'
    CHECK (notification_detail IN ('minimal', 'full'));
ALTER TABLE teams ADD COLUMN notification_detail_changed_at timestamptz;
ALTER TABLE teams ADD COLUMN notification_detail_changed_by text;
