"""Logging that a flood of clients cannot turn into a flood of lines.

``RareLog`` logs a kind of event at most once per interval, with how many
were not logged since. ``RareFilter`` does the same to every warning of a
library logger (asyncio's "socket.send() raised exception.", a transport's
errors), counted by message. Nothing here knows HTTP.
"""

import logging
import threading
import time


class RareLog:
    """Logs a kind of event at most once per ``interval`` seconds, with
    how many were not logged since: floods cost one line a minute.
    """

    def __init__(self, logger, interval: float = 60.0,
                 clock=time.monotonic):
        self._log, self._interval, self._clock = logger, interval, clock
        self._last: dict[str, float] = {}
        self._quiet: dict[str, int] = {}
        self._lock = threading.Lock()

    def allow(self, kind: str) -> str | None:
        """None when ``kind`` was logged within the interval (counted);
        else what to add to the line about those not logged.
        """
        now = self._clock()
        with self._lock:
            last = self._last.get(kind)
            if last is not None and now - last < self._interval:
                self._quiet[kind] = self._quiet.get(kind, 0) + 1
                return None
            quiet = self._quiet.pop(kind, 0)
            self._last[kind] = now
        if quiet and last is not None:
            return f' ({quiet} more like it in the last {now - last:.0f}s)'
        return ''

    def warning(self, kind: str, message: str) -> bool:
        """Log ``message`` unless ``kind`` was logged within the
        interval; whether it was logged.
        """
        more = self.allow(kind)
        if more is None:
            return False
        self._log.warning('%s%s', message, more)
        return True


class RareFilter(logging.Filter):
    """A logger filter: each message (its format string) at WARNING or
    above passes once per interval, the next one saying how many were
    dropped; tracebacks of transport errors are dropped (a client that
    left is not a fault of the exporter).
    """

    def __init__(self, interval: float = 60.0, clock=time.monotonic):
        super().__init__()
        self._rare = RareLog(None, interval, clock)

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        more = self._rare.allow(str(record.msg))
        if more is None:
            return False
        if more:
            record.msg = f'{record.msg}{more}'
        record.exc_info = None
        record.exc_text = None
        return True


def quiet_asyncio(interval: float = 60.0) -> RareFilter:
    """Put a RareFilter on asyncio's logger (once); the filter."""
    logger = logging.getLogger('asyncio')
    for existing in logger.filters:
        if isinstance(existing, RareFilter):
            return existing
    found = RareFilter(interval)
    logger.addFilter(found)
    return found
