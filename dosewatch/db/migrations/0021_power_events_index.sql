-- The device sweep asks, per dispenser, for its latest power_lost / power_restored event.
-- Without an index that leads with the dispenser, that walks every event by receive time and
-- filters: a cost that grows with the whole history (a second per sweep after three weeks of
-- 100 dispensers). Power events are rare, so a partial index answers it in one probe.
CREATE INDEX dose_events_power_idx ON dose_events (dispenser_id, received_at DESC)
    WHERE type IN ('power_lost', 'power_restored');
