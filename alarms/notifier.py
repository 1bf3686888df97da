"""The one narrow seam between the outbox and whatever delivers SMS and calls.

The outbox dispatcher (:mod:`alarms.outbox`) hands a :class:`Notifier` one :class:`Outgoing` at
a time and records what came back. The real implementation is :mod:`alarms.twilio_notifier`
(the real ``twilio`` client); tests use :class:`RecordingNotifier`, a fake that keeps what it
was given and fails on request, the way httpx tests use a mock transport.

``find_sent`` exists for one moment: a process that died after the provider accepted a message
but before the outbox recorded it. The row is then claimed again, and the dispatcher first asks
the provider whether a message carrying the row's ``ref`` already went out, so that it records
it instead of sending a second copy.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from dosewatch.domain.escalation import Channel
from dosewatch.domain.retry import Failure


@dataclass(frozen=True)
class Outgoing:
    channel: Channel  # SMS or VOICE (console notifications never leave the building)
    to: str  # E.164
    body: str  # the SMS text; for a call, what the TwiML will read (for logs and fakes)
    notification_ids: tuple[int, ...]  # several when SMS are bundled
    ref: str  # unique per send, carried in the SMS text or the call URL: see find_sent


class NotificationError(Exception):
    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.message or f"HTTP {failure.status} code {failure.code}")
        self.failure = failure


class Notifier(Protocol):
    name: str
    # Where recipients reach dosewatch (DOSEWATCH_PUBLIC_URL): the webhooks Twilio calls, and
    # the console links in the SMS, which open the alarm after sign-in.
    public_url: str

    def send(self, out: Outgoing) -> str:
        """Hand the message or call to the provider; return its id. Raise NotificationError."""
        ...

    def find_sent(
        self, out: Outgoing, since: datetime, exclude: frozenset[str] = frozenset()
    ) -> str | None:
        """The provider's id of a send of ``out`` made since ``since``, if there was one;
        ``exclude`` lists ids already recorded for other rows (a call carries no ref)."""
        ...


@dataclass
class RecordingNotifier:
    """A fake provider: records every send; ``fail`` decides per message whether it fails."""

    name: str = "recording"
    public_url: str = "https://dosewatch.invalid"
    sent: list[Outgoing] = field(default_factory=list)
    fail: Callable[[Outgoing], Failure | None] = lambda _out: None

    def send(self, out: Outgoing) -> str:
        failure = self.fail(out)
        if failure is not None:
            raise NotificationError(failure)
        self.sent.append(out)
        return f"FAKE{len(self.sent):06d}"

    def find_sent(
        self, out: Outgoing, since: datetime, exclude: frozenset[str] = frozenset()
    ) -> str | None:
        for i, previous in enumerate(self.sent, start=1):
            if previous.ref == out.ref:
                return f"FAKE{i:06d}"
        return None
