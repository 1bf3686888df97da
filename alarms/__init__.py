"""Missed-dose detection, escalation and notifications."""
