"""MQTT ingest: decode dispenser messages, store them, match dose events to slots."""
