import logging

import pytest

from gateway.loglimit import LogLimit


def test_at_most_n_lines_per_window_then_a_count(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    limit = LogLimit(logging.getLogger("t"), per_window=3, window_s=60, monotonic=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="t"):
        for i in range(100):
            limit.warning("bad %d", i)
        assert [r.getMessage() for r in caplog.records] == ["bad 0", "bad 1", "bad 2"]
        now[0] = 60.0
        limit.warning("bad %d", 100)
    assert [r.getMessage() for r in caplog.records][3:] == [
        "97 more like this in the last 60 s (not logged; all are stored)",
        "bad 100",
    ]
