"""Failed sign-in attempts, counted per user and per address: after `limit` failures within
`window` seconds, further attempts for that user or from that address are refused (HTTP 429 on
the API, a message on the log-in page) until the oldest failure leaves the window. Guessing a
password or a token stays slow; a person who mistypes twice is not locked out.

In memory: one process serves the pages and the API, and a restart forgetting the counts only
gives an attacker another minute's worth of ten tries.
"""

from __future__ import annotations

import threading
import time
from collections import deque

from core.errors import TuneboardError


class TooManyAttempts(TuneboardError):
    def __init__(self, retry_after: float):
        self.retry_after = max(1, int(retry_after + 0.999))
        super().__init__(f"Too many failed attempts; try again in {self.retry_after} s.")


class Throttle:
    def __init__(self, limit: int = 10, window: float = 60.0, clock=time.monotonic):
        self.limit, self.window, self.clock = limit, window, clock
        self._failures: dict[str, deque] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque:
        q = self._failures.get(key)
        if q is None:
            return deque()
        while q and now - q[0] >= self.window:
            q.popleft()
        if not q:
            del self._failures[key]
        return q

    def check(self, *keys: str | None) -> None:
        """Raise TooManyAttempts when any of the keys (e.g. "user:ann", "addr:10.0.0.5") is spent."""
        now = self.clock()
        with self._lock:
            waits = [self.window - (now - q[0]) for key in keys if key
                     for q in [self._recent(key, now)] if len(q) >= self.limit]
        if waits:
            raise TooManyAttempts(max(waits))

    def fail(self, *keys: str | None) -> None:
        now = self.clock()
        with self._lock:
            for key in keys:
                if key:
                    self._failures.setdefault(key, deque()).append(now)
                    q = self._failures[key]
                    while len(q) > self.limit:  # only the newest `limit` matter
                        q.popleft()


SIGN_IN = Throttle()  # the process's counter: log-in page, API log-in and token checks
