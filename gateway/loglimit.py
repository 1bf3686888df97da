"""Log at most a few lines a minute for a kind of event, and say how many were held back.

A broken or hostile device can send thousands of bad messages a second; each is quarantined
(nothing is lost), but a log line for each would drown the log and cost more than storing it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable


class LogLimit:
    def __init__(
        self,
        logger: logging.Logger,
        per_window: int = 10,
        window_s: float = 60.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._log, self._per_window, self._window_s = logger, per_window, window_s
        self._now = monotonic
        self._lock = threading.Lock()
        self._window_start = monotonic()
        self._logged = 0
        self._held = 0

    def warning(self, msg: str, *args: object) -> None:
        with self._lock:
            now = self._now()
            if now - self._window_start >= self._window_s:
                if self._held:
                    self._log.warning(
                        "%d more like this in the last %.0f s (not logged; all are stored)",
                        self._held,
                        self._window_s,
                    )
                self._window_start, self._logged, self._held = now, 0, 0
            if self._logged >= self._per_window:
                self._held += 1
                return
            self._logged += 1
        self._log.warning(msg, *args)
