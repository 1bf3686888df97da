"""Many dispensers publishing at once, for load tests and benchmarks.

A small MQTT 3.1.1 publisher (CONNECT with each dispenser's own credentials, PUBLISH at QoS 1,
PUBACK) over plain sockets and one selector, so that 500 dispensers need 500 sockets and one
thread, not 500 paho network threads. It speaks only what a dispenser needs to send; the
receiving side under test is always the real gateway with paho.

:func:`publish_burst` returns only when the broker has acknowledged every message (PUBACK),
i.e. when the broker owns it; a message it refuses raises.
"""

from __future__ import annotations

import selectors
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _utf8(s: str) -> bytes:
    raw = s.encode()
    return struct.pack("!H", len(raw)) + raw


def connect_packet(client_id: str, username: str | None, password: str | None) -> bytes:
    flags = 0x02  # clean session: a publisher needs no session
    payload = _utf8(client_id)
    if username is not None:
        flags |= 0x80
        payload += _utf8(username)
    if password is not None:
        flags |= 0x40
        payload += _utf8(password)
    body = _utf8("MQTT") + bytes([4, flags]) + struct.pack("!H", 60) + payload
    return b"\x10" + _varint(len(body)) + body


def publish_packet(topic: str, payload: bytes, packet_id: int) -> bytes:
    body = _utf8(topic) + struct.pack("!H", packet_id) + payload
    return b"\x32" + _varint(len(body)) + body  # PUBLISH, QoS 1, no retain


@dataclass
class _Conn:
    name: str
    sock: socket.socket
    queue: list[tuple[str, bytes]]
    pos: int = 0
    connected: bool = False
    inflight: dict[int, float] = field(default_factory=dict)
    next_id: int = 1
    buf: bytearray = field(default_factory=bytearray)
    acked: int = 0


class BrokerRefused(Exception):
    pass


def publish_burst(
    host: str,
    port: int,
    messages: dict[str, list[tuple[str, bytes]]],
    credentials: dict[str, str] | None = None,
    *,
    rate_per_s: float | None = None,
    window: int = 50,
    on_sent: Callable[[str, int, float], None] | None = None,
    timeout_s: float = 120.0,
) -> int:
    """Publish each dispenser's messages in order, as that dispenser (client id = username = key).

    ``rate_per_s`` paces the total (None: as fast as the broker takes them); ``window`` bounds
    each connection's unacknowledged messages. ``on_sent(dispenser, index, time.time())`` is
    called as each message is written. Returns the number acknowledged.
    """
    sel = selectors.DefaultSelector()
    conns: list[_Conn] = []
    for name, queue in messages.items():
        s = socket.create_connection((host, port), timeout=10)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        password = credentials.get(name) if credentials else None
        s.sendall(connect_packet(name, name if credentials else None, password))
        s.setblocking(False)
        c = _Conn(name, s, list(queue))
        conns.append(c)
        sel.register(s, selectors.EVENT_READ, c)
    total = sum(len(c.queue) for c in conns)
    done = 0
    sent = 0
    start = time.monotonic()
    deadline = start + timeout_s
    turn = 0
    try:
        while done < total:
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {done} of {total} messages acknowledged")
            # Send what the pace and the windows allow, one dispenser after another.
            elapsed = time.monotonic() - start
            allowed = total if rate_per_s is None else int(elapsed * rate_per_s) + 1
            idle = 0
            while sent < allowed and idle < len(conns):
                c = conns[turn]
                turn = (turn + 1) % len(conns)
                if not c.connected or c.pos >= len(c.queue) or len(c.inflight) >= window:
                    idle += 1
                    continue
                idle = 0
                topic, payload = c.queue[c.pos]
                pid = c.next_id
                c.next_id = c.next_id % 65535 + 1
                c.inflight[pid] = time.monotonic()
                c.sock.setblocking(True)
                c.sock.sendall(publish_packet(topic, payload, pid))
                c.sock.setblocking(False)
                if on_sent is not None:
                    on_sent(c.name, c.pos, time.time())
                c.pos += 1
                sent += 1
            wait = 0.0005 if rate_per_s is not None else 0.005
            for key, _ in sel.select(timeout=wait):
                c = key.data
                done += _read(c)
    finally:
        for c in conns:
            sel.unregister(c.sock)
            try:
                c.sock.setblocking(True)
                c.sock.sendall(b"\xe0\x00")  # DISCONNECT
            except OSError:
                pass
            c.sock.close()
    return done


def _read(c: _Conn) -> int:
    try:
        data = c.sock.recv(65536)
    except BlockingIOError:
        return 0
    if not data:
        raise BrokerRefused(f"{c.name}: the broker closed the connection")
    c.buf += data
    acked = 0
    while len(c.buf) >= 2:
        kind = c.buf[0] >> 4
        length, used = _read_varint(c.buf, 1)
        if length is None or len(c.buf) < 1 + used + length:
            break
        body = bytes(c.buf[1 + used : 1 + used + length])
        del c.buf[: 1 + used + length]
        if kind == 2:  # CONNACK
            if body[1] != 0:
                raise BrokerRefused(f"{c.name}: CONNACK return code {body[1]}")
            c.connected = True
        elif kind == 4:  # PUBACK
            (pid,) = struct.unpack("!H", body[:2])
            if c.inflight.pop(pid, None) is not None:
                acked += 1
    c.acked += acked
    return acked


def _read_varint(buf: bytearray, at: int) -> tuple[int | None, int]:
    value, mult, used = 0, 1, 0
    while at + used < len(buf):
        byte = buf[at + used]
        value += (byte & 0x7F) * mult
        used += 1
        if not byte & 0x80:
            return value, used
        mult *= 128
    return None, used
