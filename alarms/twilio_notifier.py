"""The real :class:`~alarms.notifier.Notifier`: SMS and voice calls through the ``twilio`` client.

Every request is made by the official ``twilio`` helper library, so what a test sees at the
stand-in (:mod:`tests.twilio_standin`) is exactly what Twilio would receive. ``api_url`` points
the client elsewhere through the library's supported extension point, a custom ``HttpClient``
(``twilio.http.http_client.TwilioHttpClient`` subclass): Twilio's own edge and region settings
only choose among Twilio's hosts, and cannot name a local stand-in.

Delivery reports and key presses come back as webhooks: see :mod:`dashboards.twilio_hooks`.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime
from urllib.parse import urlsplit, urlunsplit

import requests
from twilio.base.exceptions import TwilioException, TwilioRestException, TwilioServiceException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from alarms.notifier import NotificationError, Notifier, Outgoing
from dosewatch.config import ConfigError, Settings
from dosewatch.domain.escalation import Channel
from dosewatch.domain.retry import Failure

log = logging.getLogger(__name__)

DEFAULT_API_URL = "https://api.twilio.com"
# The outbox leases a claimed row for 60 s. A request must end well inside that, or a second
# dispatcher could reclaim the row while the first send may still succeed (a double page).
TIMEOUT_S = 15.0
# find_sent looks at recent sends to one number only; this bounds the paging if many exist.
LIST_LIMIT = 200
CALL_EVENTS = ["initiated", "ringing", "answered", "completed"]


class _RebasedHttpClient(TwilioHttpClient):
    """Sends each request the client builds to ``base_url`` instead of Twilio's host.

    The path and query are kept, so the stand-in receives ``/2010-04-01/Accounts/...`` exactly
    as Twilio would. Paging URLs are absolute (built from ``api.twilio.com``) and pass through
    here too, so listing works as well.
    """

    def __init__(self, base_url: str, timeout: float) -> None:
        super().__init__(timeout=timeout)
        self._base = urlsplit(base_url.rstrip("/"))

    def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        parts = urlsplit(url)
        rebased = urlunsplit(
            (self._base.scheme, self._base.netloc, self._base.path + parts.path, parts.query, "")
        )
        return super().request(
            method, rebased, params, data, headers, auth, timeout, allow_redirects
        )


def _failure(exc: Exception) -> Failure:
    """The provider's answer in the terms of :mod:`dosewatch.domain.retry`."""
    if isinstance(exc, TwilioRestException):
        return Failure(exc.status, exc.code, exc.msg)
    if isinstance(exc, TwilioServiceException):  # the newer RFC 9457 error shape
        return Failure(exc.status, exc.code, exc.detail or exc.title)
    if isinstance(exc, TwilioException):
        # A list page that failed: the library raises TwilioException(text, Response).
        response = exc.args[1] if len(exc.args) > 1 else None
        if isinstance(response, Response):
            try:
                body = json.loads(response.text)
            except ValueError:
                body = {}
            code = body.get("code") if isinstance(body, dict) else None
            text = body.get("message") if isinstance(body, dict) else None
            return Failure(response.status_code, code, f"{exc.args[0]}: {text or response.text}")
    # No answer at all (refused, reset, timed out): nothing says the number is wrong, so retry.
    # A read timeout may hide a send that did happen; a duplicate page is the safe side.
    return Failure(None, None, f"{type(exc).__name__}: {exc}")


class TwilioNotifier:
    name = "twilio"

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        from_number: str,
        public_url: str,
        api_url: str | None = None,
    ) -> None:
        self._from = from_number
        self.public_url = public_url.rstrip("/")
        rebase = api_url is not None and api_url.rstrip("/") != DEFAULT_API_URL
        http = (
            _RebasedHttpClient(api_url, TIMEOUT_S)
            if rebase and api_url is not None
            else TwilioHttpClient(timeout=TIMEOUT_S)
        )
        self._client = Client(account_sid, auth_token, http_client=http)
        # The library also reads TWILIO_EDGE / TWILIO_REGION from the process environment; only
        # DOSEWATCH_* settings decide where pages go, so those are switched off here.
        self._client.edge = None
        self._client.region = None

    def send(self, out: Outgoing) -> str:
        try:
            if out.channel == Channel.SMS:
                msg = self._client.messages.create(
                    to=out.to,
                    from_=self._from,
                    body=out.body,
                    status_callback=f"{self.public_url}/twilio/sms/status",
                )
                return str(msg.sid)
            if out.channel == Channel.VOICE:
                # The TwiML endpoint reads the alarm from the database by notification id, so
                # what the nurse hears is current when the call is answered, not when placed.
                n = out.notification_ids[0]
                call = self._client.calls.create(
                    to=out.to,
                    from_=self._from,
                    url=f"{self.public_url}/twilio/voice?n={n}",
                    status_callback=f"{self.public_url}/twilio/voice/status?n={n}",
                    status_callback_event=CALL_EVENTS,
                )
                return str(call.sid)
        except (TwilioException, requests.RequestException) as exc:
            raise NotificationError(_failure(exc)) from exc
        raise ValueError(f"channel {out.channel!r} is not sent through Twilio")

    def find_sent(
        self, out: Outgoing, since: datetime, exclude: frozenset[str] = frozenset()
    ) -> str | None:
        # The library formats datetimes with strftime(...Z) without converting: pass UTC, or a
        # Stockholm time would be read as UTC and the window would shift by an hour.
        after = since.astimezone(UTC)
        try:
            if out.channel == Channel.SMS:
                return self._find_sms(out, after)
            if out.channel == Channel.VOICE:
                return self._find_call(out, after, exclude)
        except (TwilioException, requests.RequestException) as exc:
            raise NotificationError(_failure(exc)) from exc
        return None

    def _find_sms(self, out: Outgoing, after: datetime) -> str | None:
        # The ref must stand as a whole token: "n12" must not match a body tagged "[n123]".
        tag = re.compile(rf"(?<!\w){re.escape(out.ref)}(?!\w)")
        # A message still queued at Twilio has no date_sent yet and is not listed; the outbox
        # only reconciles after a 60 s lease ran out, by when it has normally gone. If it is
        # missed, the cost is a second copy of the SMS, never a lost one.
        for msg in self._client.messages.list(
            to=out.to, from_=self._from, date_sent_after=after, limit=LIST_LIMIT
        ):
            if tag.search(msg.body or ""):
                return str(msg.sid)
        return None

    def _find_call(self, out: Outgoing, after: datetime, exclude: frozenset[str]) -> str | None:
        # A call has no body to carry the ref, and Twilio's call records do not show the TwiML
        # URL that carries n=<id>. So the earliest call from our number to this nurse since the
        # row was created, not already recorded for another row (``exclude``: the outbox's own
        # sids for this number), is taken as this row's call: it was placed when the row was
        # first claimed, and later calls belong to later rows. If it was in fact another
        # alarm's call, this step goes silent: the nurse was rung about an alarm moments ago,
        # the webhooks (keyed by n=<id>) still act on the right alarm, and this alarm's
        # escalation timer still moves on. Calling again instead would ring a nurse twice
        # within a minute for every dispatcher crash.
        calls = [
            c
            for c in self._client.calls.list(
                to=out.to, from_=self._from, start_time_after=after, limit=LIST_LIMIT
            )
            if c.sid not in exclude
        ]
        if not calls:
            return None
        earliest = min(calls, key=lambda c: c.date_created or after)
        return str(earliest.sid)


def notifier_from_settings(settings: Settings) -> Notifier | None:
    """The configured Twilio notifier, or ``None`` (console-only mode) when nothing is set.

    Setting only some of the Twilio variables is a mistake reported at start-up, not a quiet
    fallback to console-only: a half-configured pager that silently sends nothing is the worst
    outcome for a night nurse.
    """
    token = settings.twilio_auth_token.get_secret_value() if settings.twilio_auth_token else None
    values = {
        "DOSEWATCH_TWILIO_ACCOUNT_SID": settings.twilio_account_sid or None,
        "DOSEWATCH_TWILIO_AUTH_TOKEN": token or None,
        "DOSEWATCH_TWILIO_FROM": settings.twilio_from or None,
        "DOSEWATCH_PUBLIC_URL": settings.public_url or None,
    }
    twilio_vars = [k for k in values if k != "DOSEWATCH_PUBLIC_URL"]
    if all(values[k] is None for k in twilio_vars):
        log.warning(
            "TWILIO IS NOT CONFIGURED: SMS and voice calls are OFF. Alarms show only in the "
            "console; no nurse will be paged. Set DOSEWATCH_TWILIO_ACCOUNT_SID, "
            "DOSEWATCH_TWILIO_AUTH_TOKEN, DOSEWATCH_TWILIO_FROM and DOSEWATCH_PUBLIC_URL."
        )
        return None
    missing = [k for k, v in values.items() if v is None]
    if missing:
        raise ConfigError(f"{', '.join(missing)}: required when any Twilio setting is given")
    assert settings.twilio_account_sid and token and settings.twilio_from and settings.public_url
    if urlsplit(settings.public_url).scheme not in ("http", "https"):
        raise ConfigError("DOSEWATCH_PUBLIC_URL: must be an absolute http(s):// URL")
    return TwilioNotifier(
        settings.twilio_account_sid,
        token,
        settings.twilio_from,
        settings.public_url,
        api_url=settings.twilio_api_url,
    )
