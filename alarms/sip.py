"""SIP ``MESSAGE`` out, through sippy's RFC 3261 transaction layer (the one SIP seam).

sippy runs one event loop per process (its ``ED2`` dispatcher, a singleton). :class:`SippySender`
starts that loop in a daemon thread the first time it is needed and hands each request to it;
the caller blocks until the final answer, or until the transaction times out (Timer F: sippy
answers ``408`` itself after 32 s of silence). Retransmissions over UDP (Timer E) are sippy's.

Anything that sends SCAIP takes a :class:`SipSender`, so tests of the forwarding rules can use
a fake; the SIP path itself is tested end to end through a real SIP server (kamailio).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any, Protocol

log = logging.getLogger(__name__)
TIMEOUT_S = 40.0  # beyond sippy's own 32 s transaction timeout


class SipError(Exception):
    """No final answer came (the SIP stack could not send, or never heard back)."""


@dataclass(frozen=True)
class SipAnswer:
    code: int
    reason: str
    body: bytes


class SipSender(Protocol):
    def send(self, uri: str, body: bytes, content_type: str) -> SipAnswer: ...


class _ToLogging:
    """sippy's logger interface, written to Python logging (at debug: it logs every packet)."""

    def write(self, *args: Any, **kwargs: Any) -> None:
        log.debug("sippy: %s", "".join(str(a) for a in args).rstrip())


_loop_lock = threading.Lock()
_loop_started = False


def _ensure_loop() -> Any:
    global _loop_started
    from sippy.Core.EventDispatcher import ED2  # importing sippy creates its dispatcher

    with _loop_lock:
        if not _loop_started:

            def run() -> None:
                ED2.my_ident = threading.get_ident()  # the loop's thread owns the dispatcher
                ED2.loop()

            threading.Thread(target=run, name="sippy-loop", daemon=True).start()
            _loop_started = True
    return ED2


class SippySender:
    """Sends from ``local_host:local_port`` (the address the centre answers to)."""

    def __init__(self, local_host: str, local_port: int, user: str = "dosewatch") -> None:
        from sippy.SipTransactionManager import SipTransactionManager

        self._host, self._port, self._user = local_host, local_port, user
        self._ed = _ensure_loop()
        config = {"_sip_address": local_host, "_sip_port": local_port, "_sip_logger": _ToLogging()}
        self._tm = self._ed.callFromThreadSync(lambda: SipTransactionManager(config))

    def send(self, uri: str, body: bytes, content_type: str) -> SipAnswer:
        from sippy.MsgBody import MsgBody
        from sippy.SipAddress import SipAddress
        from sippy.SipCallId import SipCallId
        from sippy.SipFrom import SipFrom
        from sippy.SipRequest import SipRequest
        from sippy.SipURL import SipURL

        done = threading.Event()
        answer: list[SipAnswer] = []
        failed: list[Exception] = []

        def on_response(resp: Any) -> None:
            code, reason = resp.getSCode()
            if code < 200:
                return  # provisional: keep waiting for the final answer
            content = resp.getBody()
            answer.append(SipAnswer(code, reason, str(content).encode() if content else b""))
            done.set()

        def start() -> None:
            try:
                me = SipURL(username=self._user, host=self._host, port=self._port)
                sender = SipFrom(address=SipAddress(url=me))
                sender.genTag()
                request = SipRequest(
                    method="MESSAGE", ruri=SipURL(url=uri), fr0m=sender, callid=SipCallId(),
                    body=MsgBody(body.decode(), mtype=content_type),
                )  # fmt: skip
                self._tm.newTransaction(request, on_response)
            except (ValueError, IndexError, TypeError, OSError) as exc:  # a URI sippy refuses
                failed.append(exc)
                done.set()

        self._ed.callFromThread(start)
        if not done.wait(TIMEOUT_S):
            raise SipError(f"no final SIP answer from {uri} in {TIMEOUT_S:.0f} s")
        if failed:
            raise SipError(f"could not send to {uri}: {failed[0]}")
        return answer[0]
