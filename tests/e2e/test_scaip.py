"""SCAIP end to end: a missed dose → SIP MESSAGE → kamailio (Debian's SIP server) → a test
receiving centre that parses what arrives. Exactly once, also when the centre is down a while.

The alarm jobs run on a fake clock (the retry backoff is moved, not waited for); the SIP legs
are real UDP through kamailio, with sippy's transaction layer on our side.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from psycopg_pool import ConnectionPool

from alarms.fanout import fan_out
from alarms.missed import sweep_missed_doses
from alarms.scaip import ScaipForwarder
from alarms.sip import SippySender
from dosewatch.clock import FakeClock
from dosewatch.db import scaip as scaip_sql
from dosewatch.domain import scaip
from tests.auth_helpers import team
from tests.helpers import add_dispenser

KAMAILIO = shutil.which("kamailio") or "/usr/sbin/kamailio"
pytestmark = pytest.mark.skipif(
    not Path(KAMAILIO).exists(), reason="needs Debian's kamailio (.ci/run installs it)"
)

_CONFIG = """#!KAMAILIO
debug=1
log_stderror=yes
children=1
listen=udp:127.0.0.1:{port}
mpath="/usr/lib/x86_64-linux-gnu/kamailio/modules/"
loadmodule "kex.so"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "textops.so"
modparam("tm", "fr_timer", 2000)
request_route {{
    if (!mf_process_maxfwd_header("10")) {{ sl_send_reply("483", "Too Many Hops"); exit; }}
    if (is_method("MESSAGE")) {{
        $du = "sip:127.0.0.1:{centre}";
        if (!t_relay()) {{ sl_reply_error(); }}
        exit;
    }}
    sl_send_reply("405", "Method Not Allowed");
}}
"""


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Centre:
    """The alarm receiving centre: parses each SIP MESSAGE and its SCAIP body, answers 200."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.messages: list[dict[str, str]] = []
        self.transactions: set[str] = set()
        self._sock: socket.socket | None = None

    def up(self) -> None:
        from sippy.SipRequest import SipRequest

        self._sock = sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", self.port))

        def serve() -> None:
            while True:
                try:
                    data, addr = sock.recvfrom(65535)
                except OSError:
                    return  # closed: the centre is down
                request = SipRequest(data.decode())
                branch = request.getHFBody("via").getBranch()
                if branch not in self.transactions:  # a UDP retransmission is not a new alarm
                    self.transactions.add(branch)
                    fields = scaip.parse_message(str(request.getBody()).encode())
                    fields["content_type"] = str(request.getBody().mtype)
                    self.messages.append(fields)
                    ref = fields["ref"]
                else:
                    ref = self.messages[-1]["ref"]
                answer = request.genResponse(200, "OK")
                answer.setBody(_body(scaip.answer_message(ref)))
                sock.sendto(str(answer).encode(), addr)

        threading.Thread(target=serve, daemon=True).start()

    def down(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def _body(xml: bytes) -> object:
    from sippy.MsgBody import MsgBody

    return MsgBody(xml.decode(), mtype=scaip.CONTENT_TYPE)


@pytest.fixture
def centre() -> Iterator[Centre]:
    c = Centre(_free_udp_port())
    yield c
    c.down()


@pytest.fixture
def sip_server(tmp_path: Path, centre: Centre) -> Iterator[str]:
    port = _free_udp_port()
    cfg = tmp_path / "kamailio.cfg"
    cfg.write_text(_CONFIG.format(port=port, centre=centre.port))
    proc = subprocess.Popen(
        [KAMAILIO, "-f", str(cfg), "-DD", "-E", "-Y", str(tmp_path), "-w", str(tmp_path)],
        stdout=subprocess.DEVNULL, stderr=(tmp_path / "kamailio.log").open("w"),
    )  # fmt: skip
    deadline = time.monotonic() + 10
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.settimeout(0.2)
        while True:  # an OPTIONS probe: kamailio answers 405 once it listens
            probe.sendto(b"OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;rport;"
                         b"branch=z9hG4bKprobe\r\nFrom: <sip:p@x>;tag=1\r\nTo: <sip:x@x>\r\n"
                         b"Call-ID: probe\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
                         ("127.0.0.1", port))  # fmt: skip
            try:
                if probe.recv(2048).startswith(b"SIP/2.0 405"):
                    break
            except TimeoutError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError((tmp_path / "kamailio.log").read_text()[-2000:])
    yield f"sip:centre@127.0.0.1:{port}"
    proc.terminate()
    proc.wait(10)


@pytest.fixture(scope="module")
def sender() -> SippySender:
    return SippySender("127.0.0.1", _free_udp_port())


def _team_that_forwards(pool: ConnectionPool, clock: FakeClock, uri: str) -> None:
    team_id = team(pool, "Umeå Norr")
    patient_id = add_dispenser(pool, "SCAIP-1", clock.now())
    with pool.connection() as conn, conn.transaction():
        conn.execute("UPDATE patients SET team_id = %s WHERE id = %s", (team_id, patient_id))
        scaip_sql.put_settings(conn, team_id, centre_uri=uri, controller_id="UMEA-HHC-1",
                               kinds=["missed_dose"], active=True, by="test",
                               now=clock.now())  # fmt: skip


def _forwards(pool: ConnectionPool) -> list[scaip_sql.ForwardRow]:
    with pool.connection() as conn:
        return scaip_sql.forwards(conn, team_id=None, limit=10)


def test_a_missed_dose_reaches_the_centre_once_with_the_expected_fields(
    pool: ConnectionPool, clock: FakeClock, centre: Centre, sip_server: str,
    sender: SippySender,
) -> None:  # fmt: skip
    centre.up()
    _team_that_forwards(pool, clock, sip_server)
    clock.advance(timedelta(hours=1))  # the 08:00 window closes untaken
    (alarm_id,) = sweep_missed_doses(pool, clock)
    forwarder = ScaipForwarder(pool, clock, sender, jitter=lambda: 1.0)
    assert fan_out(pool, clock) >= 1
    assert forwarder.run() == 1
    assert fan_out(pool, clock) == 0 and forwarder.run() == 0, "nothing is sent twice"
    assert centre.messages == [{
        "ref": f"dw{alarm_id}", "ver": "01.00", "cid": "UMEA-HHC-1", "dty": "0011",
        "did": "SCAIP-1", "stc": "0081", "pri": "3", "mty": "ME",
        "content_type": "application/scaip+xml",
    }]  # fmt: skip
    (forward,) = _forwards(pool)
    assert (forward.state, forward.last_code, forward.attempts) == ("received", 200, 1)


def test_a_centre_that_is_down_gets_the_alarm_later_exactly_once(
    pool: ConnectionPool, clock: FakeClock, centre: Centre, sip_server: str,
    sender: SippySender,
) -> None:  # fmt: skip
    _team_that_forwards(pool, clock, sip_server)  # the centre is not up
    clock.advance(timedelta(hours=1))
    sweep_missed_doses(pool, clock)
    fan_out(pool, clock)
    forwarder = ScaipForwarder(pool, clock, sender, jitter=lambda: 1.0)
    for _ in range(2):
        assert forwarder.run() == 1
        (forward,) = _forwards(pool)
        assert forward.state == "pending" and forward.last_code is not None
        assert forward.last_code >= 400, "kamailio answered for the silent centre"
        clock.advance(timedelta(seconds=30))
    centre.up()
    assert forwarder.run() == 1
    clock.advance(timedelta(minutes=10))
    assert forwarder.run() == 0
    assert [m["stc"] for m in centre.messages] == ["0081"]
    (forward,) = _forwards(pool)
    assert (forward.state, forward.attempts) == ("received", 3)


def test_kinds_a_team_did_not_choose_are_not_forwarded(
    pool: ConnectionPool, clock: FakeClock, centre: Centre, sip_server: str
) -> None:
    _team_that_forwards(pool, clock, sip_server)
    with pool.connection() as conn:  # a dose_status_unknown alarm: the dispenser is offline
        conn.execute("INSERT INTO dispenser_presence (dispenser_id, online, online_changed_at,"
                     " updated_at) VALUES ('SCAIP-1', false, %s, %s)",
                     (clock.now(), clock.now()))  # fmt: skip
    clock.advance(timedelta(hours=1))
    sweep_missed_doses(pool, clock)
    fan_out(pool, clock)
    assert _forwards(pool) == []
