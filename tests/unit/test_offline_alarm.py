"""The device-alarm offline rule (dosewatch.domain.offline.offline_for_alarm), on an injected
'now': offline long enough to call someone, by silence or by a Last Will that has stood."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dosewatch.domain.offline import OFFLINE_AFTER, is_offline, offline_for_alarm

NOW = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)
SEC = timedelta(seconds=1)


@pytest.mark.parametrize(
    ("online", "changed_ago", "seen_ago", "expected"),
    [
        # A broker restart: every dispenser's Will landed seconds ago, heard from just before.
        (False, 2 * SEC, 30 * SEC, False),
        (False, OFFLINE_AFTER - SEC, 4 * 60 * SEC, False),
        # A Will standing OFFLINE_AFTER: a dispenser really gone (a cut line).
        (False, OFFLINE_AFTER, OFFLINE_AFTER + 90 * SEC, True),
        (False, OFFLINE_AFTER, None, True),
        (False, None, None, True),  # a Will of unknown age counts as old
        # Silence without a Will: the same threshold.
        (True, timedelta(hours=3), OFFLINE_AFTER, False),
        (True, timedelta(hours=3), OFFLINE_AFTER + SEC, True),
        (None, None, OFFLINE_AFTER + SEC, True),
        # Silent for long although the Will is fresh (a redelivered Will after a long gap).
        (False, 2 * SEC, OFFLINE_AFTER + SEC, True),
        (True, 2 * SEC, 10 * SEC, False),
        (None, None, None, False),  # never heard from: nothing known, nobody called
    ],
)
def test_offline_for_alarm(
    online: bool | None,
    changed_ago: timedelta | None,
    seen_ago: timedelta | None,
    expected: bool,
) -> None:
    changed = None if changed_ago is None else NOW - changed_ago
    seen = None if seen_ago is None else NOW - seen_ago
    assert offline_for_alarm(online, changed, seen, NOW) is expected


def test_offline_for_alarm_never_flags_what_is_offline_is_not() -> None:
    """Calling someone implies the slot rule sees it offline too (never the other way round
    needed: a fresh Will makes a closing window unknown without paging anyone)."""
    agos = [None, SEC, OFFLINE_AFTER - SEC, OFFLINE_AFTER, OFFLINE_AFTER + SEC, timedelta(hours=5)]
    for online in (True, False, None):
        for changed_ago in agos:
            for seen_ago in agos:
                changed = None if changed_ago is None else NOW - changed_ago
                seen = None if seen_ago is None else NOW - seen_ago
                if offline_for_alarm(online, changed, seen, NOW):
                    assert is_offline(online, seen, NOW)


def test_the_threshold_is_a_parameter() -> None:
    after = timedelta(minutes=60)
    assert not offline_for_alarm(False, NOW - timedelta(minutes=59), None, NOW, after)
    assert offline_for_alarm(False, NOW - timedelta(minutes=60), None, NOW, after)
