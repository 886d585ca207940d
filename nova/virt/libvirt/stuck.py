"""Guests whose QEMU does not answer: how long a monitor has been busy, and
the registry of the guests a poll keeps out of the bulk call.

A call that needs a guest's QEMU monitor waits while the monitor is busy;
a stopped or hung QEMU keeps it busy for good. ``monitor_busy`` asks
libvirt how long (``controlInfo()``, which needs no job, so it answers
while a call is stuck). ``StuckGuests`` remembers the guests found stuck,
one run of one guest each (``records.domain_key``), with the probe (a call
of its own) that checks whether each answers again: the statistics poll
keeps them out of its bulk calls, the connection counts their probes, the
driver refuses to wait on them. It must not read nova.conf.
"""

import threading

from nova.virt.libvirt import api

# A QEMU monitor busy for less than this many seconds is doing one of
# libvirt's short jobs (reconnecting to each QEMU when libvirt opens or
# restarts, about 20 ms; another client's query, a few ms), not hung: its
# guest is read again. Longer, it is stuck: a poll's own late bulk call
# has waited on it at least stats_poll.FIRST_WAIT.
BRIEF_BUSY = 0.3


def busy_seconds(info) -> float | None:
    """Seconds of a controlInfo() answer (state, details, busy ms) the
    monitor has been busy, None when it is free.
    """
    if info is None or info[0] == api.VIR_DOMAIN_CONTROL_OK:
        return None
    return info[2] / 1000


def monitor_busy(domain) -> float | None:
    """Seconds the domain's QEMU monitor has been busy, None when it is
    free or unknown.
    """
    try:
        return busy_seconds(domain.controlInfo())
    except api.Error:
        return None


def monitors_busy(domains: list) -> list[float | None]:
    """monitor_busy of each of ``domains``."""
    return [monitor_busy(domain) for domain in domains]


class Stuck:
    """A guest whose QEMU did not answer: since when, its last record (for
    its state), and the probe (a call of its own) that checks whether it
    answers again.
    """

    __slots__ = ('since', 'record', 'probe')

    def __init__(self, since: float, record: dict):
        self.since, self.record, self.probe = since, record, None


class StuckGuests:
    """The guests found stuck, by (name, domain id)."""

    def __init__(self):
        self._entries: dict[tuple[str, int], Stuck] = {}
        self._lock = threading.Lock()

    def __bool__(self) -> bool:
        return bool(self._entries)

    def get(self, key) -> Stuck | None:
        return self._entries.get(key)

    def mark(self, key, since: float, record: dict) -> None:
        """``key``'s guest is stuck since ``since`` (monotonic)."""
        with self._lock:
            self._entries[key] = Stuck(since, record)

    def answered(self, key) -> None:
        """``key``'s guest answers again."""
        with self._lock:
            self._entries.pop(key, None)

    def keep_only(self, present) -> None:
        """Forget the guests not among ``present`` keys (gone, or another
        run now).
        """
        present = set(present)
        with self._lock:
            for key in [k for k in self._entries if k not in present]:
                del self._entries[key]

    @property
    def names(self) -> list[str]:
        return sorted(name for name, _ in list(self._entries))

    def probes(self) -> list:
        """The probes still running (calls that count against their
        connection).
        """
        return [e.probe for e in list(self._entries.values())
                if e.probe is not None and not e.probe.done()]
