"""SCAIP alarm messages for an alarm receiving centre (pure: data in, XML bytes out).

Swedish social alarms speak SCAIP (SS 91100:2014, also CLC/TS 50134-9): short XML alarm
messages carried in SIP ``MESSAGE`` requests. The standard itself is not public. What this
module rests on, and so all it claims to cover:

- the request element ``mrq`` with ``ref`` (our reference, unique per alarm, so the centre can
  dedupe and answer), ``ver`` (``01.00``), ``cid`` (controller id: the installation's id at the
  centre), ``dty`` (device type), ``did`` (device id: the dispenser), ``stc`` (status code),
  ``pri`` (priority 0–9) and ``mty`` (message type: ``ME`` alarm message);
- the response element ``mrs`` with ``ref`` and ``snu`` (0 = OK), when the centre sends one in
  the SIP answer's body;
- the codes device type ``0011`` pill dispenser and status ``0081`` pill not taken, as used by
  the open-source ``caruhome/scaip-gateway``; not confirmed against the standard.

Not covered: voice (the SIP ``INVITE`` leg), heartbeats (``PI``), resets (``RE``), location,
and any field not listed above. The SIP answer's status code is the acknowledgement of
*receipt* by the centre — never of the alarm, which a nurse still acknowledges in dosewatch.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from enum import StrEnum

VERSION = "01.00"
DEVICE_TYPE_PILL_DISPENSER = "0011"
CONTENT_TYPE = "application/scaip+xml"


class MessageType(StrEnum):
    ALARM = "ME"


# The alarm kinds that have a SCAIP status code; only these can be forwarded.
STATUS_CODES = {"missed_dose": "0081"}  # pill not taken
FORWARDABLE_KINDS = frozenset(STATUS_CODES)

# SCAIP priority is 0–9; this installation's reading of our three levels (document changes).
PRIORITIES = {"high": 1, "medium": 3, "low": 5}


@dataclass(frozen=True)
class ScaipAlarm:
    ref: str
    controller_id: str
    dispenser_id: str
    kind: str
    priority: str


@dataclass(frozen=True)
class ScaipAnswer:
    ref: str | None
    snu: int | None  # 0 is OK; None when the centre sent no body


def reference(alarm_id: int) -> str:
    """One reference per alarm, whichever process sends it and however often."""
    return f"dw{alarm_id}"


def forwardable(kind: str, team_kinds: frozenset[str], training: bool = False) -> bool:
    """A team forwards the kinds it chose, of those SCAIP has a code for. A training alarm is
    never forwarded: SCAIP has no way to say "practice", and a centre would dispatch help."""
    return not training and kind in FORWARDABLE_KINDS and kind in team_kinds


def alarm_message(alarm: ScaipAlarm) -> bytes:
    if alarm.kind not in STATUS_CODES:
        raise ValueError(f"no SCAIP status code for alarm kind {alarm.kind!r}")
    root = ET.Element("mrq")
    for tag, value in (
        ("ref", alarm.ref),
        ("ver", VERSION),
        ("cid", alarm.controller_id),
        ("dty", DEVICE_TYPE_PILL_DISPENSER),
        ("did", alarm.dispenser_id),
        ("stc", STATUS_CODES[alarm.kind]),
        ("pri", str(PRIORITIES.get(alarm.priority, 3))),
        ("mty", MessageType.ALARM.value),
    ):
        ET.SubElement(root, tag).text = value
    data: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return data


def parse_message(body: bytes) -> dict[str, str]:
    """The fields of an ``mrq`` (the test receiver's side, and a check of what we send)."""
    root = ET.fromstring(body)
    if root.tag != "mrq":
        raise ValueError(f"expected an mrq element, got {root.tag!r}")
    return {child.tag: child.text or "" for child in root}


def parse_answer(body: bytes) -> ScaipAnswer:
    if not body.strip():
        return ScaipAnswer(None, None)
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        return ScaipAnswer(None, None)
    snu = root.findtext("snu")
    return ScaipAnswer(root.findtext("ref"), int(snu) if snu and snu.isdigit() else None)


def answer_message(ref: str, snu: int = 0) -> bytes:
    root = ET.Element("mrs")
    ET.SubElement(root, "ref").text = ref
    ET.SubElement(root, "snu").text = str(snu)
    data: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return data
