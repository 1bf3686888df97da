"""When to try a failed notification again, and when to give up on it (pure; ``now`` is passed).

A *transient* failure (Twilio answered 429 or 5xx, the network failed) is retried with
exponential backoff and full jitter drawn from a caller-supplied number, so that a thousand
failures at 08:45 do not all retry in the same second. A *permanent* failure (an invalid or
unreachable number, a number that opted out) is never retried: the escalation moves to its next
step at once, because waiting cannot make a wrong number right.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

BASE = timedelta(seconds=10)
CAP = timedelta(minutes=5)
MAX_ATTEMPTS = 6

# Twilio error codes that waiting will not fix (https://www.twilio.com/docs/api/errors).
PERMANENT_CODES = frozenset(
    {
        21211,  # invalid 'To' phone number
        21214,  # 'To' number cannot be reached
        21217,  # phone number does not appear to be valid
        21408,  # permission to send to this region is not enabled
        21610,  # the recipient replied STOP
        21612,  # cannot route to this number
        21614,  # 'To' is not a mobile number
        13224,  # invalid call 'To' number
    }
)


@dataclass(frozen=True)
class Failure:
    status: int | None  # HTTP status, None when no answer came
    code: int | None = None  # the provider's error code
    message: str = ""


def is_permanent(failure: Failure) -> bool:
    if failure.code in PERMANENT_CODES:
        return True
    # Other 4xx (bad request, not found) will fail the same way again, except rate limiting.
    return failure.status is not None and 400 <= failure.status < 500 and failure.status != 429


def next_attempt(attempts: int, now: datetime, jitter: float = 1.0) -> datetime | None:
    """When to try again after ``attempts`` failed tries; ``None`` when it is time to give up.

    ``jitter`` in [0, 1] scales the backoff ("full jitter"); 1.0 gives the deterministic upper
    bound, which tests use.
    """
    if attempts >= MAX_ATTEMPTS:
        return None
    backoff = min(CAP, BASE * (1 << max(0, attempts - 1)))  # doubling per failed try
    return now + max(timedelta(seconds=1), backoff * min(max(jitter, 0.0), 1.0))
