"""The gateway without a broker: an in-memory message source and a synchronous ``fire_message``.

For tests about the gateway's own logic (what it stores, matches, quarantines, counts, and when
it acknowledges): the real :class:`gateway.mqtt.Gateway` and the real database, with messages
handed over in-process instead of through Mosquitto, and written on the test's thread. Nothing
polls, nothing sleeps. The real-broker behaviour (sessions, retained copies, redelivery, acks on
the wire) stays in ``tests/e2e``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from psycopg_pool import ConnectionPool

from dosewatch.clock import FakeClock
from gateway.mqtt import Gateway
from gateway.source import Delivery


class InMemorySource:
    """A :class:`gateway.source.MessageSource` that delivers what a test sends, and records the
    acknowledgements the gateway gives (it must give them only after commit)."""

    def __init__(self) -> None:
        self._deliver: Callable[[Delivery], None] | None = None
        self._mid = 0
        self.acked: list[int] = []

    def start(self, deliver: Callable[[Delivery], None]) -> None:
        self._deliver = deliver

    def ack(self, mid: int, qos: int) -> None:
        self.acked.append(mid)

    def stop(self) -> None:
        self._deliver = None

    def send(self, topic: str, payload: bytes, *, retained: bool = False) -> int:
        """Deliver one QoS 1 message; return its message id."""
        assert self._deliver is not None, "the gateway has not started"
        self._mid += 1
        self._deliver(Delivery(topic, payload, self._mid, 1, retained))
        return self._mid


@contextmanager
def memory_gateway(pool: ConnectionPool, clock: FakeClock) -> Iterator[Gateway]:
    """A started gateway on an :class:`InMemorySource`, without its writer thread."""
    gw = Gateway(InMemorySource(), pool, clock, downlink_interval_s=None)
    gw.start(writer_thread=False)
    try:
        yield gw
    finally:
        gw.stop()


def fire_message(
    gateway: Gateway, topic: str, payload: bytes, *, retained: bool = False
) -> Counter[str]:
    """Deliver one message and write it now; return its outcome counts. It has been committed
    and acknowledged when this returns (receive time: the gateway's clock, i.e. the test's)."""
    return fire_messages(gateway, [(topic, payload)], retained=retained)


def fire_messages(
    gateway: Gateway, messages: Sequence[tuple[str, bytes]], *, retained: bool = False
) -> Counter[str]:
    """Deliver several messages and write them as one batch."""
    source = gateway.source
    assert isinstance(source, InMemorySource), "fire_message needs memory_gateway()"
    mids = [source.send(topic, payload, retained=retained) for topic, payload in messages]
    outcomes = gateway.write_pending()
    assert set(mids) <= set(source.acked), "committed messages must be acknowledged"
    return outcomes
