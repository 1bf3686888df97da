"""How far a dispenser's clock is off: an estimate from recent samples (pure).

A sample is ``device_time - received_at`` in seconds: a time the device stamped on a message
(a status ``at`` or an event ``occurred_at``) minus the server time the gateway received it.
Each sample is the true offset *minus* the message's delay on the way (network, broker queue,
the device's own offline buffer), and a delay is never negative. So no sample is larger than
the true offset, and the largest recent sample is the closest to it. This is a minimum-latency
filter, as in NTP: the estimate is the maximum of the last :data:`KEEP` samples.

An event buffered offline and delivered days later only yields a very negative sample, which
the maximum ignores; it neither drags the estimate down nor needs special handling. A clock
that is corrected backwards keeps showing the old, larger offset until its samples leave the
window (20 samples: under two hours at one status every 5 minutes).

How the offset is used, and how it is not:

- it is **shown** to staff with the dispenser, and **flagged** when it is more than
  :data:`LIMIT_S` (2 minutes) off either way, so someone fixes the device's time;
- it is **not** used to correct anything. The server clock alone decides deadlines and whether
  a dose was on time or late (``received_at`` against ``window_end``). A device's
  ``occurred_at`` is recorded, not trusted, and not shifted by this estimate.
"""

from __future__ import annotations

from collections.abc import Sequence

KEEP = 20
LIMIT_S = 120.0


def add_samples(previous: Sequence[float], new: Sequence[float], keep: int = KEEP) -> list[float]:
    """The last ``keep`` samples, oldest first, after appending ``new`` in arrival order."""
    if keep <= 0:
        return []
    return [*previous, *new][-keep:]


def estimate(samples: Sequence[float]) -> float | None:
    """The estimated offset in seconds (device minus server), or ``None`` with no samples."""
    return max(samples) if samples else None


def is_off(offset_s: float | None, limit_s: float = LIMIT_S) -> bool:
    """True when the clock is more than ``limit_s`` fast or slow; no estimate is not flagged."""
    return offset_s is not None and abs(offset_s) > limit_s
